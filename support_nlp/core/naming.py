"""Category names people would write: short keyphrases ("cancelled flight", "lost luggage"), not keyword triples.

1. Candidates are the uni- and bi-grams of the category's tweets (stop words of every supported language, brand
   handles, emoji, numbers, URLs and placeholders such as __email__ removed before n-grams are formed; Japanese,
   written without spaces, is cut into words by a morphological analyser), ranked by class-based TF-IDF: frequent
   in the category, rare across categories.
2. Each text counts once per phrase and only its first `max_tokens_per_text` words count, so one very long or
   repetitive text cannot rename a category; phrases frequent in every category ("thanks") are dropped.
3. KeyBERT-style re-ranking: a phrase's vector is the mean embedding of all tweets using it; phrases whose vector is
   close to the category's centroid describe it, phrases shared with other categories drift away from it.
4. Maximal marginal relevance picks the name's phrases: relevant, and not a paraphrase of one already chosen.
5. Names are unique: categories choose in order of their best phrase's relevance, and a phrase already taken as
   another category's leading phrase is skipped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import emoji
import numpy as np
import stopwordsiso
from better_profanity.utils import get_complete_path_of_file, read_wordlist
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

if TYPE_CHECKING:
    from janome.tokenizer import Tokenizer

# The languages the language detector reports for twcs (core/language.py).
SUPPORTED_LANGUAGES = ("en", "es", "fr", "de", "pt", "ja", "it", "nl")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@\w{1,30}")
# Anonymisation placeholders: twcs writes __email__ and __credit_card__; other dumps write <PHONE>.
PLACEHOLDER = re.compile(r"__\w+__|<[A-Za-z_]+>")
# Letters only (no digits or underscores), two or more: numbers and order ids never become names.
WORD = re.compile(r"(?u)\b[^\W\d_]{2,}\b")
# Handles like SpotifyCares, Uber_Support or AskPlayStation also appear as the bare brand word in tweets.
HANDLE_SUFFIX = re.compile(r"_?(help|support|cares?|service|team|tweets|uk|us|es)$")
HANDLE_PREFIX = re.compile(r"^ask_?")
# Kana mark a text as Japanese (Chinese has none). In such a text, runs of kana and kanji (with the iteration and
# long-vowel marks) go to the segmenter; Latin words and the rest are tokenised as in any other text.
KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f]")
KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff々]")
JAPANESE_RUN = re.compile(r"([\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f\u3400-\u4dbf\u4e00-\u9fff々〆ヵヶ]+)")


@dataclass(frozen=True)
class NamingConfig:
    candidates_per_category: int = 30
    keyphrases_per_category: int = 10
    min_name_words: int = 2  # "lost luggage" or "refund, card": one word alone rarely says what the topic is
    max_tokens_per_text: int = 60  # a tweet has at most ~55 words; longer texts are broken rows or spam
    min_texts: int = 3  # a phrase used by fewer texts of the category is an accident, not a theme
    # In at least this share of the texts of most categories (three in four): says nothing about any one.
    ubiquitous_share: float = 0.01
    bigram_preference: float = 0.6  # a two-word phrase leads the name when this close to the most relevant phrase
    # ... and used by at least this share as many of the category's texts: "social media" in 3 of 95 tweets must
    # not name a category where "fix" is in 18.
    bigram_usage: float = 0.25
    relevance_weight: float = 0.5  # c-TF-IDF rank vs closeness to the centroid, both scaled to [0, 1]
    diversity: float = 0.3  # MMR: weight of dissimilarity to phrases already chosen


@dataclass(frozen=True)
class CategoryNaming:
    name: str
    keyphrases: list[tuple[str, float]]  # best first, with relevance in [0, 1]


# Negations carry the complaint ("not working", "no signal"); what is left of a contraction once its apostrophe
# splits it ("don't" -> "don", "I'll" -> "ll") carries nothing.
NEGATIONS = frozenset({"not", "no", "never", "cannot", "nothing"})
CONTRACTION_STEMS = frozenset({"ll", "ve", "re", "don", "didn", "doesn", "isn", "wasn", "aren", "haven", "couldn"})


@cache
def stop_words() -> frozenset[str]:
    # stopwords-iso's English list (1,300 words) holds "order", "problem", "help" and "working": the words of
    # support; scikit-learn's shorter English list does not. The other languages' lists have no such overlap.
    foreign = stopwordsiso.stopwords([code for code in SUPPORTED_LANGUAGES if code != "en"])
    return frozenset((ENGLISH_STOP_WORDS | CONTRACTION_STEMS | {word.lower() for word in foreign}) - NEGATIONS)


def brand_words(brands: Iterable[str]) -> frozenset[str]:
    words = set()
    for brand in {str(b).lower() for b in brands}:
        bare = HANDLE_PREFIX.sub("", HANDLE_SUFFIX.sub("", brand))
        # "McDonald's" loses its "s" to the tokenizer (one letter): the brand McDonalds then reads "mcdonald".
        words |= {brand, brand.replace("_", ""), bare, bare.removesuffix("s")}
    return frozenset(word for word in words if len(word) >= 2)


# better-profanity's list is English only: the commonest swear words of the other supported languages (not a
# complete list; a French category of the first-contact tweets holds "c'est de la grosse merde").
OTHER_LANGUAGES_SWEAR_WORDS = frozenset({
    "mierda", "puta", "puto", "joder", "coño", "carajo", "pendejo", "cabrón",  # es
    "merde", "putain", "bordel", "connard", "salope",  # fr
    "scheiße", "scheisse", "arschloch", "verdammt",  # de
    "merda", "porra", "caralho", "foda",  # pt
    "cazzo", "stronzo", "vaffanculo",  # it
    "kut", "klote", "godverdomme",  # nl
})  # fmt: skip


@cache
def swear_words() -> frozenset[str]:
    """better-profanity's English word list (MIT), with the plurals it leaves out ("sucks"), and the other
    supported languages' commonest swear words."""
    words = frozenset(read_wordlist(get_complete_path_of_file("profanity_wordlist.txt")))
    return words | {f"{word}s" for word in words if " " not in word} | OTHER_LANGUAGES_SWEAR_WORDS


# Parts of speech (Janome's IPADIC tags) that carry a topic: nouns, verbs, adjectives. Particles, auxiliaries,
# adverbs, conjunctions, prefixes and symbols never do, nor nouns that only stand for another (pronouns, numbers,
# suffixes such as さん, dependent nouns such as こと) and verbs that only follow another (している's いる).
JAPANESE_CONTENT_POS = frozenset({"名詞", "動詞", "形容詞"})
JAPANESE_FUNCTION_SUBTYPES = frozenset({"代名詞", "数", "接尾", "非自立"})


@cache
def japanese_tokenizer() -> Tokenizer:
    # Imported here, not at the top: only texts with kana load the dictionary, so English runs pay nothing.
    from janome.tokenizer import Tokenizer

    return Tokenizer()


def japanese_words(run: str) -> list[str]:
    """The content words of a run of Japanese script, verbs and adjectives in their dictionary form (届か -> 届く),
    so inflections of one word count together. A word of one character is a kanji (車, 駅): one kana alone is a
    stray, such as the ツ of the shrug ¯\\_(ツ)_/¯ in English tweets."""
    words = []
    for token in japanese_tokenizer().tokenize(run):
        pos, subtype = token.part_of_speech.split(",")[:2]
        word = token.surface if pos == "名詞" else token.base_form
        if (
            pos in JAPANESE_CONTENT_POS
            and subtype not in JAPANESE_FUNCTION_SUBTYPES
            and (len(word) > 1 or KANJI.match(word))
        ):
            words.append(word)
    return words


def words_of(text: str) -> list[str]:
    """Letter words of a lower-cased text, two letters or more; in a Japanese text its Japanese runs are cut into
    words."""
    if not KANA.search(text):
        return WORD.findall(text)
    pieces = JAPANESE_RUN.split(text)  # runs of Japanese script at odd positions
    return [
        word for i, piece in enumerate(pieces) for word in (japanese_words(piece) if i % 2 else WORD.findall(piece))
    ]


def keyword_tokens(text: str, excluded: frozenset[str], max_tokens: int) -> list[str]:
    text = html.unescape(text)
    for pattern in (URL, MENTION, PLACEHOLDER):
        text = pattern.sub(" ", text)
    text = emoji.replace_emoji(text, replace=" ")
    words = words_of(text.lower())[:max_tokens]
    # A brand written as two words ("Wells Fargo", "Virgin Trains" for the handles WellsFargo, VirginTrains).
    split_brand = {i for i, pair in enumerate(zip(words, words[1:], strict=False)) if "".join(pair) in excluded}
    split_brand |= {i + 1 for i in split_brand}
    return [word for i, word in enumerate(words) if word not in excluded and i not in split_brand]


def phrases(tokens: Sequence[str]) -> set[str]:
    """The distinct uni- and bi-grams of one text, so a text counts at most once per phrase."""
    return set(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if a != b}


def class_tfidf(category_counts: np.ndarray) -> np.ndarray:
    """c-TF-IDF (Grootendorst, 2022): a phrase's share of the category's phrases times log(1 + A / its total)."""
    term_frequency = category_counts / np.maximum(category_counts.sum(axis=1, keepdims=True), 1)
    average = category_counts.sum() / max(len(category_counts), 1)
    return term_frequency * np.log1p(average / np.maximum(category_counts.sum(axis=0), 1))


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)


def scaled(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else np.ones_like(values)


def maximal_marginal_relevance(
    relevance: np.ndarray, vectors: np.ndarray, diversity: float, count: int, skip: Iterable[int] = ()
) -> list[int]:
    """Indices in pick order: each maximises (1 - diversity) * relevance - diversity * similarity to the chosen."""
    similarity = unit(vectors) @ unit(vectors).T
    available = np.ones(len(relevance), dtype=bool)
    available[list(skip)] = False
    chosen: list[int] = []
    while len(chosen) < count and available.any():
        redundancy = similarity[:, chosen].max(axis=1) if chosen else np.zeros(len(relevance))
        score = np.where(available, (1 - diversity) * relevance - diversity * redundancy, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
    return chosen


def shares_a_stem(words: Iterable[str], others: Iterable[str]) -> bool:
    """Whether a word is another's inflection by the crude test of one beginning the other: song/songs, dm/dms."""
    return any(a.startswith(b) or b.startswith(a) for a in words for b in others)


def name_from(ranked: list[str], config: NamingConfig) -> str:
    """The leading phrase, then following phrases that repeat no word of the name (nor an inflection of one), until
    it has enough words. Two words that are also a keyphrase together read as that phrase: "happy halloween", not
    "halloween, happy"."""
    parts = [ranked[0]]
    for phrase in ranked[1:]:
        used = {word for part in parts for word in part.split()}
        if len(used) >= config.min_name_words:
            break
        if not shares_a_stem(phrase.split(), used):
            parts.append(phrase)
    if len(parts) == 2 and not any(" " in part for part in parts):
        for phrase in (f"{parts[0]} {parts[1]}", f"{parts[1]} {parts[0]}"):
            if phrase in ranked:
                return phrase
    return ", ".join(parts)


def name_categories(
    texts: Sequence[str],
    labels: np.ndarray,
    vectors: np.ndarray,
    brands: Iterable[str] = (),
    config: NamingConfig = NamingConfig(),
) -> list[CategoryNaming]:
    """A name and ranked keyphrases for each category 0..k-1; `vectors` (embeddings or their projection) align with
    `texts`. Categories without a usable phrase are named "category <id>"."""
    k = int(labels.max()) + 1 if len(labels) else 0
    excluded = stop_words() | brand_words(brands) | swear_words()
    vectorizer = CountVectorizer(
        analyzer=lambda text: phrases(keyword_tokens(text, excluded, config.max_tokens_per_text)), binary=True
    )
    texts_by_phrase = vectorizer.fit_transform(texts).tocsc()
    vocabulary = vectorizer.get_feature_names_out()
    membership = sparse.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    counts = (membership @ texts_by_phrase).toarray()
    sizes = np.bincount(labels, minlength=k)
    ubiquitous = np.quantile(counts / np.maximum(sizes[:, None], 1), 0.25, axis=0) >= config.ubiquitous_share
    tfidf = np.where(ubiquitous, 0.0, class_tfidf(counts))
    # A small category may have no phrase in min_texts of its tweets: then its rarer phrases are all it has.
    common_enough = (counts >= config.min_texts) | ~(counts >= config.min_texts).any(axis=1, keepdims=True)
    scores = np.where(common_enough, tfidf, 0.0)
    centroids = unit(np.stack([vectors[labels == c].mean(axis=0) for c in range(k)]))

    ranked_by_category = []
    for c in range(k):
        top = [j for j in np.argsort(-scores[c])[: config.candidates_per_category] if scores[c, j] > 0]
        if not top:
            ranked_by_category.append(
                (np.array([], dtype=str), np.zeros(0), np.zeros((0, vectors.shape[1])), [], np.zeros(0))
            )
            continue
        # A phrase's vector: the mean embedding of every tweet that uses it, in any category.
        phrase_vectors = np.stack([vectors[texts_by_phrase[:, j].indices].mean(axis=0) for j in top])
        closeness = unit(phrase_vectors) @ centroids[c]
        weight = config.relevance_weight
        relevance = weight * scaled(scores[c, top]) + (1 - weight) * scaled(closeness)
        ranked_by_category.append((vocabulary[top], relevance, phrase_vectors, scores[c, top], counts[c, top]))

    taken: set[str] = set()
    namings: dict[int, CategoryNaming] = {}
    for c in sorted(range(k), key=lambda c: -float(ranked_by_category[c][1].max(initial=0.0))):
        candidates, relevance, phrase_vectors, tfidf_scores, uses = ranked_by_category[c]
        if not len(candidates):
            namings[c] = CategoryNaming(name=f"category {c}", keyphrases=[])
            continue
        # Every phrase already leads another name: this one leads with its best anyway, and the category's
        # id keeps the name unique.
        leading = [i for i, phrase in enumerate(candidates) if phrase not in taken] or list(range(len(candidates)))
        best = max(leading, key=lambda i: relevance[i])
        bigrams = [
            i
            for i in leading
            if " " in candidates[i]
            and relevance[i] >= config.bigram_preference * relevance[best]
            and uses[i] >= config.bigram_usage * uses[best]
        ]
        first = max(bigrams or leading, key=lambda i: relevance[i])
        rest = maximal_marginal_relevance(
            relevance, phrase_vectors, config.diversity, config.keyphrases_per_category - 1, skip=[first]
        )
        order = [first, *rest]
        name = name_from([str(candidates[i]) for i in order], config)
        if candidates[first] in taken or name in {naming.name for naming in namings.values()}:
            name = f"{name} ({c})"
        taken.add(str(candidates[first]))
        namings[c] = CategoryNaming(
            name=name,
            # In name order (relevance and diversity), each with its c-TF-IDF score, which is always positive.
            keyphrases=[(str(candidates[i]), round(float(tfidf_scores[i]), 4)) for i in order],
        )
    return [namings[c] for c in range(k)]
