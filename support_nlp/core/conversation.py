"""What a customer's tweet does in its conversation: state an issue, or one of a few conversational acts.

Most inbound twcs tweets answer an agent (in the bundled sample only 13 % open a thread). Clustering all of them
turns "thanks", "sent you a DM", "iPhone 7, iOS 11" and "..." into discovered "categories". Here every inbound
tweet gets a `message_kind`: `issue`, or one of the fixed conversational kinds in CONVERSATIONAL_KINDS, by rules
and patterns (English and Spanish, with the commonest thanks and greetings of the other supported languages).
A rule only ever turns a tweet *away* from `issue` when the whole tweet is the act: "thanks, but my order is
still missing" stays an issue.

A complaint or plea that names nothing ("@AppleSupport I have a problem", "Y'all suck", "help what does this mean
<link>") is `no_topic_stated`: no act, but no topic either, so it is not clustered (a handful of such tweets made a
junk category and blurred a real one) and, like an act, counts in its thread's category when the thread states one.

Threads: twcs links every tweet to the one it answers (`in_response_to_tweet_id`), and a customer's first message
in a thread answers nothing. raw_tweets follows each chain through the agents' tweets too, over the whole source
(`core.twcs.thread_roots`), and gives every customer tweet the `thread_id` of its conversation's first tweet.
Categories are discovered on the issue messages that open a thread; every tweet of a thread carries the category
of the thread's first issue message (`thread_categories`), so cases can be counted.

Near-duplicates: retweets, promotional copies and templates that differ only by URL, @mention, hashtag, case or
punctuation share a `near_duplicate_key`; they are one text to cluster, counted with their copies.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import emoji
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from support_nlp.core.naming import CONTRACTION_STEMS, brand_words
from support_nlp.core.parallel import map_in_chunks
from support_nlp.core.text import EMOJI_CHARACTERS, MENTION_PATTERN, URL_PATTERN

ISSUE = "issue"
THANKS = "thanks_or_praise"
DM_SENT = "dm_sent"
DETAILS_GIVEN = "details_given"
GREETING = "greeting"
ACKNOWLEDGEMENT = "acknowledgement"
EMPTY = "empty_or_unintelligible"
NO_TOPIC = "no_topic_stated"
CONVERSATIONAL_KINDS = (THANKS, DM_SENT, DETAILS_GIVEN, GREETING, ACKNOWLEDGEMENT, EMPTY)
MESSAGE_KINDS = (ISSUE, *CONVERSATIONAL_KINDS, NO_TOPIC)

HASHTAG_PATTERN = re.compile(r"#\w+")
RETWEET_PREFIX = re.compile(r"^\s*rt\b[\s:]*", re.IGNORECASE)
NON_WORD = re.compile(r"[\W_]+")
WORD = re.compile(r"[^\W_]+")


def _words(*alternatives: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


def _any_word(*patterns: re.Pattern) -> re.Pattern:
    """One word (as `fullmatch`) that any of these `_words` patterns would find."""
    return re.compile("|".join(pattern.pattern for pattern in patterns), re.IGNORECASE)


# Words that make a tweet say something is wrong or wanted: a tweet holding one is never a mere act.
PROBLEM_CUES = _words(
    r"but", r"though", r"still", r"not", r"never",
    r"(?:do|does|did|is|are|was|were|has|have|had|ca|wo|could|would|should)nt",
    r"no longer", r"again", r"problem\w*", r"issue\w*",
    r"error\w*", r"wrong", r"broke\w*", r"crash\w*", r"fail\w*", r"stuck", r"why", r"how", r"when", r"where",
    r"refund\w*", r"cancel\w*", r"charged", r"missing", r"help", r"please", r"pls", r"can", r"could",
    r"pero", r"todav[ií]a", r"a[uú]n", r"sigue\w*", r"problema\w*", r"error", r"ayuda\w*", r"por favor",
    r"porqu[eé]", r"por qu[eé]", r"c[oó]mo", r"cu[aá]ndo", r"nunca",
)  # fmt: skip
THANKS_PATTERN = _words(
    r"thanks?", r"thank ?(?:you|u|ya)", r"thx", r"thnx", r"thnks", r"tks", r"ty", r"cheers", r"appreciated?",
    r"grateful",
    r"awesome", r"great", r"perfect", r"brilliant", r"amazing", r"excellent", r"love (?:you|it|u)",
    r"(?:you|u) (?:guys )?(?:rock|are the best)", r"(?:it )?works? now", r"(?:all )?sorted", r"(?:that )?worked",
    r"fixed", r"solved", r"resolved", r"gracias", r"mil gracias", r"genial", r"perfecto", r"excelente",
    r"muy amables?", r"merci", r"danke", r"vielen dank", r"obrigad[oa]", r"grazie", r"bedankt", r"dank je",
    r"arigato", r"ありがとう\w*",
    # Praise that opens a thread ("Shoutout to @ChipotleTweets for doing the $3 deal") states no issue either.
    r"shout ?outs?", r"love (?:the|this|my|your|that|these|how)", r"(?:a )?blessing", r"the best", r"so good",
    r"kudos", r"well done", r"delicious", r"yumm*y",
    # Kind words to the agent ("Aw you're so sweet let's be friends").
    r"(?:so|too|very) (?:sweet|kind)", r"(?:youre|you are|ur|u r) (?:so |too |very )?(?:sweet|kind|a star|a legend)",
)  # fmt: skip
# Seasonal and closing wishes ("happy halloween", "merry christmas @brand", "have a great day", "I hope your team has
# a great holiday") say nothing about an issue: they do not count towards an act's length, and a tweet that is only
# wishes, with no problem cue, is a greeting.
WISH_ADJECTIVES = r"(?:great|good|nice|lovely|wonderful|happy|safe|blessed|fantastic|fab|awesome|amazing|beautiful)"
WISH_OCCASIONS = r"(?:day|night|evening|weekend|week|one|holiday|holidays|thanksgiving|christmas|xmas|halloween)"
WISHES = _words(
    r"happy ?(?:halloween|thanksgiving|holidays?|new ?year|easter|hanukkah|diwali)\w*", r"merry ?(?:christmas|xmas)\w*",
    r"seasons greetings",
    rf"(?:i |we )?hope (?:you|u|your|ur|yall|everyone|all)(?: \w+){{0,3}} (?:has|have|had|enjoys?|gets?) an? "
    rf"{WISH_ADJECTIVES} {WISH_OCCASIONS}",
    rf"(?:have|enjoy) an? {WISH_ADJECTIVES} {WISH_OCCASIONS}",
    r"feliz (?:navidad|halloween|a[ñn]o nuevo|d[ií]a|fin de semana|noche)", r"felices fiestas",
    r"pr[oó]spero a[ñn]o nuevo", r"joyeux no[eë]l", r"frohe weihnachten", r"buon natale", r"feliz natal",
    r"fijne feestdagen", r"prettige feestdagen", r"メリークリスマス", r"良いお年を",
)  # fmt: skip
DM_PATTERN = _words(
    r"(?:sent|send|sending|dm[’']?e?d|pm[’']?e?d|messaged|replied|responded)(?: (?:you|u|y[’']?all|it))?"
    r"(?: (?:a|an|the|another))? ?(?:dm|pm|direct message|private message|message)s?",
    r"(?:check|see|read) (?:your|ur|the) (?:dm|pm|inbox|messages?)s?", r"dm[’']?e?d (?:you|u)", r"in (?:your|ur) dms?",
    r"dm sent", r"just dm[’']?e?d", r"followed", r"following (?:you|u) now",
    r"te (?:envi[eé]|mand[eé]|escrib[ií]) (?:un |el )?(?:dm|md|mp|mensaje|privado)",
    r"(?:envi[eé]|mand[eé]) (?:un |el )?(?:dm|md|mp|mensaje directo|mensaje privado|privado)",
    r"revis(?:a|en|ar) (?:el |tu |su |sus )?(?:dm|md|mp|inbox|privado|mensajes?)",
)  # fmt: skip
GREETING_PATTERN = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening)|hola|buen(?:os|as) (?:d[ií]as|tardes|noches)|"
    r"buenas|bonjour|salut|hallo|guten tag|ol[aá]|ciao|hoi)\b(?:\s+(?:there|team|guys|all|everyone|again|"
    r"support|equipo|chicos))?[\s!.,?]*$",
    re.IGNORECASE,
)
# Short answers to an agent's question ("yes it is", "I did", "lol got it", "sorry I was rude"), with no more words.
ACKNOWLEDGEMENT_PATTERN = re.compile(
    r"^(?:ok+(?:ay)?|k|kk|ye+s+|ya+s+|yeah|yep|yup|sure|no|nope|done|will do|got it|i see|alright|all right|understood|"
    r"noted|fine|cool|right|correct|exactly|definitely|absolutely|of course|for sure|sure thing|sounds good|"
    r"(?:its |thats )?all good|no worries|i (?:just |already )?(?:did|do|have|am|will)(?: (?:it|that|so))?|just did|"
    r"ill (?:try (?:it|that)|do (?:it|that)|let you know)|(?:it|that) (?:is|does|did|was)|thats (?:right|correct|it)|"
    r"my bad|"
    r"sorry(?: (?:about that|for (?:that|the (?:confusion|trouble|mix ?up))|i was rude))?|"
    r"si|sí|vale|listo|claro|dale|de acuerdo|entendido|ya|oui|ja|d'accord)"
    r"(?:[\s,.!]+(?:ok(?:ay)?|yes|thanks?|thank you|will do|done|sure|got it|i (?:will|did|do|have|am)|"
    r"(?:it|that) (?:is|does|did|was)|man|dude|bro|lol|haha|gracias|listo|vale))*[\s!.,?]*$",
    re.IGNORECASE,
)
# Reactions before a short answer ("oh yes", "lol got it", "haha yaaas"): the answer decides the kind.
LEADING_REACTIONS = re.compile(r"^(?:(?:o+h+|a+h+|a+w+|lo+l|ha(?:ha)+h?|lmao|wow|y+a+y+)\s+)+", re.IGNORECASE)
# Device, version, order/account numbers and e-mail addresses: what an agent asks for, and gets, in a follow-up.
DETAIL_TOKENS = re.compile(
    r"\b\d+(?:\.\d+)+\b|\b(?:ios|android|macos|os x|windows|iphone|ipad|ipod|mac(?:book)?|imac|galaxy|pixel|"
    r"oneplus|xbox|ps4|ps3|version|v\d+|model|build)\b|\b[\w.+-]+@[\w-]+\.[\w.]+\b|\b\d{5,}\b|#\s?\d{4,}",
    re.IGNORECASE,
)
INTERJECTIONS = _words(
    r"h+m+", r"a+y+", r"ha(?:ha)+h?", r"lo+l", r"lmao", r"omg", r"wow", r"ugh+", r"u+h+", r"o+h+", r"a+h+",
    r"y+a+y+", r"jaja(?:ja)*", r"xd", r"wtf", r"smh", r"idk", r"bruh", r"meh", r"huh", r"eh", r"pls", r"plz",
)  # fmt: skip
# A message of more words than this states more than a thanks, a greeting or a detail.
MAX_ACT_WORDS = 12
MAX_DETAIL_WORDS = 16
MIN_CONTENT_LETTERS = 3
MAX_GREETING_WORDS = 3
# A plain thanks, or a report that the problem is gone, may hold a problem cue word ("thanks for the help",
# "the problem is solved, thanks"); those stay thanks.
RESOLVED_PATTERN = re.compile(
    r"(?:\w+ ){0,3}(?:(?:thanks?|thank (?:you|u)|thx|cheers)(?: (?:so|very) much)?"
    r"(?: for (?:the|your|ur|all)(?: \w+){0,2} (?:help|reply|response|support|assistance))?"
    r"|(?:the )?(?:problem|issue) (?:is |was |has been |got )?(?:solved|fixed|resolved|sorted)"
    r"|(?:its|it is|thats|all|everything(?: is)?) (?:working|works|fine|good|sorted)(?: (?:again|now))?"
    r"|(?:\w+ )?(?:working|works) (?:again|now))"
    r"(?: (?:thanks?|thank (?:you|u)|thx|cheers|now|again|that helps|much appreciated)){0,3}",
    re.IGNORECASE,
)


# Complaint, plea and attention words: they say something is wrong or wanted, not what.
COMPLAINT_WORDS = _words(
    r"fix\w*", r"help\w*", r"problems?", r"issues?", r"suck\w*", r"worst", r"wtf", r"hell", r"f+u+c+k+\w*", r"shit\w*",
    r"crap\w*", r"damn\w*", r"answer\w*", r"repl(?:y|ies|ied|ying)", r"respon(?:d|ds|ded|ding|se|ses)",
    r"questions?", r"concern\w*", r"mad", r"angry", r"upset", r"ridiculous", r"unacceptable", r"frustrat\w*",
    r"annoy\w*", r"disappoint\w*", r"joke", r"happening", r"going on", r"assist\w*", r"support",
)  # fmt: skip
# Words that name no topic on their own: fillers, feelings, time, and what is asked of the agent ("get back to me",
# "check your DMs").
FILLER_WORDS = _words(
    r"dms?", r"messages?", r"inbox", r"tweets?", r"tweeted", r"sent", r"check\w*", r"contact\w*", r"someone",
    r"somebody", r"anybody", r"anyone", r"people", r"ppl", r"guys", r"y?all", r"ya", r"u", r"ur", r"im", r"ive",
    r"id", r"youre", r"dont", r"cant", r"wont", r"aint", r"doesnt", r"didnt", r"isnt", r"wasnt", r"arent", r"havent",
    r"hasnt", r"thats", r"whats", r"theres", r"hello", r"hey", r"hi", r"yo", r"dear", r"please", r"pls", r"plz",
    r"kindly", r"asap", r"urgent\w*", r"now", r"today", r"yet", r"still", r"again", r"ever", r"already",
    r"minutes?", r"hours?", r"days?", r"weeks?", r"months?", r"ages", r"long", r"time", r"need\w*", r"want\w*",
    r"mean\w*", r"happen\w*", r"going", r"gonna", r"gotta", r"get\w*", r"got", r"does", r"did", r"doing", r"done",
    r"having", r"thing", r"things", r"stuff", r"situation", r"really", r"seriously", r"literally", r"actually",
    r"just", r"like", r"ok", r"okay", r"right", r"away", r"bit", r"little", r"lot", r"real", r"come", r"guess",
    r"sick", r"tired", r"fed", r"sad", r"crazy", r"terrible", r"horrible", r"awful", r"bad", r"wrong", r"serious",
    r"pathetic", r"useless", r"disgusting", r"fail\w*", r"whatever", r"thanks?", r"deserve", r"u+m+", r"stop",
    r"wait\w*", r"tried", r"try\w*", r"know", r"sure", r"make", r"explain", r"twice", r"times", r"ignor\w*", r"yes",
    r"yeah", r"tf", r"look\w*", r"trash", r"better",
)  # fmt: skip
# scikit-learn's English stop words hold a few words that are topics in support tweets ("is it down", "my bill",
# "Fire TV"); those count as content.
TOPIC_STOP_WORDS = frozenset(
    {"down", "off", "out", "up", "online", "bill", "fire", "computer", "system", "call", "detail", "amount", "name",
     "interest", "front", "side", "top", "show", "move", "part", "full", "empty", "found", "find", "bottom"}
)  # fmt: skip
FUNCTION_WORDS = (ENGLISH_STOP_WORDS - TOPIC_STOP_WORDS) | CONTRACTION_STEMS
# Interjections, complaint and filler words, checked word by word: substituting the three patterns over whole texts
# was most of the message kinds' time. ("going on", the one phrase among them, leaves "on", a function word.)
NON_TOPIC_WORD = _any_word(INTERJECTIONS, COMPLAINT_WORDS, FILLER_WORDS)
# iOS 11.1 turned a typed "i" into "I" + U+FE0F (shown as "A [?]"); a tweet showing it, or quoting the letter or
# the symbol, is about that bug.
LETTER_I_BUG = re.compile("I\ufe0f|[\"“”']\\s*[I?]\\s*[\"“”']|\\bA ?\\[?\\?")
HTML_ENTITY = re.compile(r"&\w+;")
MONEY = re.compile(r"[$£€]\s?\d")


def words_without_emoji(text: str) -> list[str]:
    """The words of a text, emoji and apostrophes removed ("don't" -> "dont")."""
    # The emoji walk is most of the kinds' time; texts without an emoji's characters skip it (text.EMOJI_CHARACTERS).
    if not EMOJI_CHARACTERS.isdisjoint(text):
        text = emoji.replace_emoji(text, replace=" ")
    return WORD.findall(text.replace("’", "'").replace("'", ""))


def topic_words(raw_text: str) -> list[str]:
    """The words of a tweet that could name a topic: without handles (and the brand words of the handles it
    mentions), links, emoji, function words, interjections, bare numbers, and complaint and filler words."""
    brands = brand_words(MENTION_PATTERN.findall(raw_text))
    typed = HTML_ENTITY.sub(" ", MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", raw_text)))
    # A version or model number, an order id, a sum of money or the iOS letter bug's symbol names the topic by itself.
    named = LETTER_I_BUG.findall(typed) + DETAIL_TOKENS.findall(typed) + MONEY.findall(typed)
    words = [word.lower() for word in words_without_emoji(typed)]
    return named + [word for word in words if word not in brands and names_a_topic(word)]


@lru_cache(maxsize=1 << 16)
def names_a_topic(word: str) -> bool:
    """Whether a lower-case word could name a topic (see `topic_words`); words repeat, so each is decided once."""
    return len(word) > 1 and not word.isdigit() and word not in FUNCTION_WORDS and not NON_TOPIC_WORD.fullmatch(word)


def _problem_in(words: str) -> bool:
    return bool(PROBLEM_CUES.search(words)) and not RESOLVED_PATTERN.fullmatch(words)


def states_problem(raw_text: str) -> bool:
    """Whether a tweet says something is wrong or wanted (a problem cue of PROBLEM_CUES: "not", "still", "refund",
    "why", ...; English and Spanish)."""
    return _problem_in(" ".join(words_without_emoji(MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", raw_text)))))


def message_kind(raw_text: str, opens_thread: bool) -> str:
    """`issue`, one of CONVERSATIONAL_KINDS, or `no_topic_stated` for one inbound tweet (raw text, as written)."""
    typed = MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", raw_text))
    words = words_without_emoji(typed)
    text = " ".join(words)
    problem = _problem_in(text)
    if ACKNOWLEDGEMENT_PATTERN.match(LEADING_REACTIONS.sub("", text)):
        return ACKNOWLEDGEMENT
    if not opens_thread and len(words) <= MAX_DETAIL_WORDS and DETAIL_TOKENS.search(typed) and not problem:
        return DETAILS_GIVEN
    if sum(map(str.isalpha, INTERJECTIONS.sub(" ", text))) < MIN_CONTENT_LETTERS:
        return EMPTY
    asks = "?" in typed and len(words) > MAX_GREETING_WORDS
    complains = problem or "?" in typed or bool(COMPLAINT_WORDS.search(text))
    stated = ISSUE if not complains or topic_words(raw_text) else NO_TOPIC
    if problem or asks or len(WISHES.sub(" ", text).split()) > MAX_ACT_WORDS:
        return stated
    if DM_PATTERN.search(text):
        return DM_SENT
    if THANKS_PATTERN.search(text):
        return THANKS
    if GREETING_PATTERN.match(text) or WISHES.search(text):
        return GREETING
    return stated


def _kinds_of(texts_and_opens: list[tuple[str, bool]]) -> list[str]:
    return [message_kind(text, opens) for text, opens in texts_and_opens]


def message_kinds(raw_texts: list[str], opens_thread: np.ndarray) -> list[str]:
    return map_in_chunks(_kinds_of, list(zip(raw_texts, map(bool, opens_thread), strict=True)))


def near_duplicate_key(raw_text: str) -> str:
    """Hash of the text without URLs, @mentions, hashtags, a retweet prefix, case, punctuation and emoji."""
    text = RETWEET_PREFIX.sub("", raw_text)
    text = HASHTAG_PATTERN.sub(" ", MENTION_PATTERN.sub(" ", URL_PATTERN.sub(" ", text)))
    text = NON_WORD.sub(" ", emoji.replace_emoji(text, replace=" ").lower()).strip()
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def opens_thread(in_response_to_tweet_id: pd.Series) -> np.ndarray:
    """True where a customer tweet answers no tweet: the first message of a thread."""
    return in_response_to_tweet_id.isna().to_numpy()


def conversation_frame(tweets: pd.DataFrame) -> pd.DataFrame:
    """Per tweet: tweet_id, message_kind, opens_thread, thread_id and near_duplicate_key.

    `tweets` needs tweet_id, thread_id, text and in_response_to_tweet_id (as raw_tweets has them)."""
    opens = opens_thread(tweets["in_response_to_tweet_id"])
    return pd.DataFrame(
        {
            "tweet_id": tweets["tweet_id"].to_numpy(np.int64),
            "message_kind": message_kinds(tweets["text"].tolist(), opens),
            "opens_thread": opens,
            "thread_id": tweets["thread_id"].to_numpy(np.int64),
            "near_duplicate_key": [near_duplicate_key(text) for text in tweets["text"]],
        },
        index=tweets.index,
    )


def discovery_rows(conversation: pd.DataFrame) -> np.ndarray:
    """Where categories are discovered: issue messages that open a thread, where customers state the issue.

    Follow-ups mostly answer an agent's question ("it's on my laptop", "since Monday"); they are classified into
    the categories found here, and counted with their thread."""
    return (conversation["opens_thread"] & (conversation["message_kind"] == ISSUE)).to_numpy()


def thread_categories(conversation: pd.DataFrame, category: pd.Series, created_at: pd.Series) -> np.ndarray:
    """Per tweet, the category of its thread's first issue message ("" when the thread has none)."""
    issues = conversation.assign(category=category.to_numpy(), created_at=created_at.to_numpy())
    issues = issues[issues["message_kind"] == ISSUE].sort_values(["created_at", "tweet_id"])
    by_thread = issues.drop_duplicates("thread_id").set_index("thread_id")["category"]
    return conversation["thread_id"].map(by_thread).fillna("").to_numpy()


def kind_shares(kinds: pd.Series) -> dict[str, float]:
    shares = kinds.value_counts(normalize=True)
    return {kind: round(float(shares.get(kind, 0.0)), 4) for kind in MESSAGE_KINDS}
