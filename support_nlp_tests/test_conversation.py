"""Message kinds, threads and near-duplicates on the real tweets of the bundled twcs sample."""

import pandas as pd
import pytest

from support_nlp.benchmarks.quality import twcs_topic_rows
from support_nlp.core.conversation import (
    ACKNOWLEDGEMENT,
    CONVERSATIONAL_KINDS,
    DETAILS_GIVEN,
    DM_SENT,
    EMPTY,
    GREETING,
    ISSUE,
    MESSAGE_KINDS,
    NO_TOPIC,
    THANKS,
    conversation_frame,
    discovery_rows,
    kind_shares,
    message_kind,
    near_duplicate_key,
    states_problem,
    thread_categories,
)
from support_nlp.core.text import clean_frame
from support_nlp.core.twcs import BUNDLED_SAMPLE, read_twcs

VARIED_GROUPS_FLOOR = 50
# Real inbound tweets of the bundled sample, as written, with whether they open a thread.
REAL_TWEETS = {
    ("@SpotifyCares DM sent!", False): DM_SENT,
    ("@SpotifyCares Thanks. I just DM’d you", False): DM_SENT,
    ("@AmericanAir Yes I did! I'm sending you a DM now.", False): DM_SENT,
    ("@SpotifyCares Thank you so much!", False): THANKS,
    ("@SpotifyCares Yes! It’s working! Thank you!", False): THANKS,
    ("@AmazonHelp Muchas gracias😊", False): THANKS,
    ("Shoutout to @ChipotleTweets for doing the $3 deal. 🙏🏼", True): THANKS,
    ("Kudos to the @AmericanAir pilot that had the smoothest landing I’ve experienced", True): THANKS,
    ("Chipotle is honestly a blessing @ChipotleTweets", True): THANKS,
    ("@SpotifyCares iPhone 8, iOS 11.1.1, 8.4.25.906", False): DETAILS_GIVEN,
    ("@SpotifyCares Galaxy s7 edge", False): DETAILS_GIVEN,
    ("@SpotifyCares Hello", False): GREETING,
    ("@SpotifyCares Done!", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares Yes", False): ACKNOWLEDGEMENT,
    # Short answers and chatter to an agent; seasonal and closing wishes.
    ("@AppleSupport Yes it is", False): ACKNOWLEDGEMENT,
    ("@TMobileHelp I did man.", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares Lol got it", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares @481621 Oh yes!!!!", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares HAHA YAAAAASSS! https://t.co/n5wRpT0phK", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares Sorry I was rude 🤗", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares Sounds good!", False): ACKNOWLEDGEMENT,
    ("@SpotifyCares Aw you're so sweet let's be friends", False): THANKS,
    ("@SpotifyCares Thankyou :)", False): THANKS,
    (
        "@SpotifyCares Awesome, thank you so much! Really appreciate it, and I hope your entire team has a great "
        "holiday!",
        False,
    ): THANKS,
    ("@SpotifyCares Everything is back to normal. Thank you, have a great night and happy holidays!", False): THANKS,
    ("Happy halloween! decided to go with a @British_Airways logo this year :P https://t.co/DHYvgFTnHj", True): (
        GREETING
    ),
    ("Got my $3 #boorito from @chipotletweets #happyhalloween🎃 https://t.co/csK92IhYn7", True): GREETING,
    ("@SpotifyCares 😡😡😡😡😡😡", False): EMPTY,
    ("@SpotifyCares  https://t.co/RGH1HRJIlB", False): EMPTY,
    ("@115888 @SpotifyCares", False): EMPTY,
    ("@ChipotleTweets app is not working!!", True): ISSUE,
    (
        "@SpotifyCares Thanks, I already did. But without increasing this limit, it'll be very hard to use your "
        "service",
        False,
    ): ISSUE,
    ("@SpotifyCares Thanks, will it be available before the end of the year?", False): ISSUE,
    # The same words with a problem stated.
    (
        "@SpotifyCares Yeah it is, but why is @135616 getting launched if I only want to use Spotify. I'm calling it "
        "a bug.",
        False,
    ): ISSUE,
    # Not an acknowledgement: a complaint, though one that names no topic (its thread states it).
    ("@Uber_Support I did. No response.", False): NO_TOPIC,
    (
        "@XboxSupport Lol so there's no one @115786 who can say when they're going to be shipped...? That's kinda "
        "weird",
        False,
    ): ISSUE,
    (
        "@115790 @XboxSupport redeemed a code for fifa points this afternoon and still haven't got it. Why is this?",
        True,
    ): ISSUE,
    ("@Uber_Support my driver crashed and I hit my head happy Halloween", True): ISSUE,
    (
        "@Tesco you have cancelled my order twice this week as it's bulk and to a business address - ITS FOR A FOOD "
        "BANK! Merry Christmas",
        True,
    ): ISSUE,
    (
        "@SpotifyCares i think you might have figured it out! it's out now. thanks guys. i was expecting a little "
        "sooner though, like other albums do. have a good day, happy thanksgiving. unless you're swedish",
        False,
    ): ISSUE,
    (
        "@SpotifyCares so kindly add Pakistan in your launching country list as many people here wants @115888 here",
        False,
    ): ISSUE,
    # Complaints and pleas that name no topic; the same words with a topic, or the iOS 11.1 letter bug's symbol.
    ("@AskPayPal i have a serious problem i need help with.", True): NO_TOPIC,
    ("Y'all suck @115714 https://t.co/9Uk1NktPUy", True): NO_TOPIC,
    ("@AppleSupport help what does this mean https://t.co/I8uNBcSW7B", True): NO_TOPIC,
    ("Y’all need to fix this now @115858", True): NO_TOPIC,
    ("What the hell @115911 @115913? https://t.co/HrgJUtIxFo", True): NO_TOPIC,
    ("@BofA_Help its a bit concerning :(", True): NO_TOPIC,
    ("Bruh can someone at @115873 @Uber_Support get back to me on my Dms 😒😒😒😒", True): NO_TOPIC,
    ("@SpotifyCares Did all that and it is still the same", False): NO_TOPIC,
    ("@TMobileHelp my internet is down", True): ISSUE,
    ("Is @117070 down for anyone else??", True): ISSUE,
    ("@AmazonHelp Where is my order? https://t.co/pXnKSCo2ex", True): ISSUE,
    ("@115714 fuck you fix my connection", True): ISSUE,
    ("Please fix the battery issues in Ios 11! @AppleSupport @115858", True): ISSUE,
    ("@hpsupport [Problem with printhead ] #hpojp6830 #missingprinthead #hpAIOi", True): ISSUE,
    ("@115858 FIX THIS I\ufe0f", True): ISSUE,
    ("@SpotifyCares @593154 virgin", False): ISSUE,  # the answer to "which provider?", not a swear word
    ("@116216 me pueden ayudar me robaronmi cuenta de psn", True): ISSUE,
    ("@116875 hola @116875 tengo un  problema con mi pedido", True): ISSUE,
    (
        "@SpotifyCares Solicito recibos Septiembre y Octubre 2017, __email__\n"
        "Pueden mandarlo automáticamente cada mes, gracias.",
        True,
    ): ISSUE,
}


@pytest.mark.parametrize(("tweet", "expected"), list(REAL_TWEETS.items()), ids=lambda v: str(v)[:40])
def test_real_tweets_get_their_kind(tweet, expected):
    text, opens = tweet
    assert message_kind(text, opens) == expected


@pytest.mark.parametrize(
    "text, stated",
    [
        ("@British_Airways what an absolute farce at Oslo Airport tonight, nearly 6 hours since my flight was "
         "cancelled and still in a queue for a hotel manned by one person", True),
        ("Getting that 3 buck burrito from @ChipotleTweets is becoming a tradition on Halloween #thebest", False),
        ("Happy Halloween! Submit your costume pics with #Thankenstein + #Contest to win a spooky trip to London, "
         "plus other scary surprise goodies! https://t.co/9M7XGcE8fx", False),
        # A problem told without a problem word: the share the report shows is a hint, not a verdict.
        ("Left Brum at 2pm, back in Crystal Palace at 4pm. A record. #virgintrains", False),
    ],
)  # fmt: skip
def test_real_tweets_state_a_problem_or_not(text, stated):
    assert states_problem(text) is stated


def test_the_labelled_issue_tweets_mostly_state_a_problem_and_the_praise_does_not():
    rows = twcs_topic_rows()
    praise = rows["topics"].map(lambda topics: bool(topics) and all(t.endswith("/Service Praise") for t in topics))
    issues = rows["topics"].map(lambda topics: any(not t.endswith("/Service Praise") for t in topics))
    stated = rows["text"].map(states_problem)
    assert stated[issues].mean() > 0.5 > stated[praise].mean()


def test_tweets_with_a_human_issue_topic_stay_issues():
    """The labelled twcs topic tweets (benchmarks/data/twcs_topics) marked with a topic other than praise state an
    issue: the act rules must leave them `issue` when they open a thread."""
    rows = twcs_topic_rows()
    labelled_issues = rows[rows["topics"].map(lambda topics: any(not t.endswith("/Service Praise") for t in topics))]
    kinds = pd.Series([message_kind(text, opens_thread=True) for text in labelled_issues["text"]])
    assert len(kinds) >= 300
    assert (kinds == ISSUE).mean() >= 0.99, labelled_issues["text"][(kinds != ISSUE).to_numpy()].tolist()


def test_only_tweets_without_a_human_topic_are_taken_as_stating_none():
    """On the labelled twcs topic tweets (as thread openers), no_topic_stated takes only tweets the annotators gave
    no topic either; most of those are follow-ups the act kinds take, so it takes few of them."""
    rows = twcs_topic_rows()
    kinds = pd.Series([message_kind(text, opens_thread=True) for text in rows["text"]])
    unlabelled = (rows["topics"].map(len) == 0).to_numpy()
    taken = (kinds == NO_TOPIC).to_numpy()
    assert not (taken & ~unlabelled).any(), rows["text"][taken & ~unlabelled].tolist()
    assert (taken & unlabelled).sum() >= 8


def test_device_details_are_only_an_answer_in_a_follow_up():
    # The same words opening a thread are someone stating their setup as (part of) the issue.
    assert message_kind("@SpotifyCares Galaxy s7 edge", opens_thread=True) != DETAILS_GIVEN
    assert message_kind("@SpotifyCares iPhone 6s, iOS 11 and the app still crashes", opens_thread=False) == ISSUE


@pytest.fixture(scope="module")
def sample_conversation():
    inbound, _, summary = read_twcs(str(BUNDLED_SAMPLE))
    tweets = clean_frame(inbound, frozenset(summary.brands))
    return tweets, conversation_frame(tweets)


def test_kinds_on_the_bundled_sample(sample_conversation):
    tweets, conversation = sample_conversation
    assert len(conversation) == len(tweets) == 20_521
    assert set(conversation["message_kind"]) <= set(MESSAGE_KINDS)
    shares = kind_shares(conversation["message_kind"])
    assert list(shares) == list(MESSAGE_KINDS) and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    # Measured 79 % issue, 11 % thanks, 5 % details, 3 % empty, 2 % acknowledgement, 1 % DM sent.
    assert 0.7 <= shares[ISSUE] <= 0.9
    assert shares[THANKS] >= 0.07 and shares[DETAILS_GIVEN] >= 0.02 and shares[DM_SENT] >= 0.005
    openers = conversation[conversation["opens_thread"]]
    assert len(openers) == 2_667
    # Customers open threads with their issue: acts are rare there, and common in follow-ups.
    assert (openers["message_kind"] == ISSUE).mean() >= 0.9
    follow_ups = conversation[~conversation["opens_thread"]]
    assert follow_ups["message_kind"].isin(CONVERSATIONAL_KINDS).mean() >= 0.2
    # A complaint naming no topic is a small share, mostly follow-ups ("still the same"); few openers state none.
    assert 0.005 <= shares[NO_TOPIC] <= 0.04
    assert 10 <= (openers["message_kind"] == NO_TOPIC).sum() <= 0.02 * len(openers)
    assert discovery_rows(conversation).sum() == (openers["message_kind"] == ISSUE).sum()


def test_every_thread_starts_at_its_earliest_customer_tweet(sample_conversation):
    tweets, conversation = sample_conversation
    frame = tweets.assign(thread_id=conversation["thread_id"].to_numpy(), opens=conversation["opens_thread"])
    openers = frame[frame["opens"]]
    assert (openers["thread_id"] == openers["tweet_id"]).all(), "an opener starts its own thread"
    assert frame["thread_id"].isin(frame["tweet_id"]).all(), "a thread is named after one of its tweets"
    first = frame.set_index("tweet_id").loc[frame["thread_id"], ["author_id", "created_at"]]
    # Another customer can join a thread by answering its agent; that is the exception.
    assert (first["author_id"].to_numpy() == frame["author_id"].to_numpy()).mean() >= 0.98
    assert (first["created_at"].to_numpy() <= frame["created_at"].to_numpy()).all()
    # Follow-ups join earlier tweets' threads: fewer threads than tweets, at least one per opener.
    assert len(openers) <= frame["thread_id"].nunique() < len(frame) / 1.3


def test_a_thread_is_the_reply_chain_through_the_agents_tweets(tmp_path):
    """Synthetic rows: customer 1 opens, the brand answers, the customer replies twice; a second customer's tweet
    answers a tweet the file does not hold."""
    rows = pd.DataFrame(
        {
            "tweet_id": ["1", "2", "3", "4", "5", "6"],
            "author_id": ["c1", "Brand", "c1", "Brand", "c1", "c2"],
            "inbound": ["True", "False", "True", "False", "True", "True"],
            "created_at": ["Tue Oct 31 22:10:47 +0000 2017"] * 6,
            "text": [
                "@Brand my order never arrived",
                "@c1 sorry, DM us",
                "@Brand done",
                "@c1 thanks",
                "@Brand still nothing",
                "@Brand same here",
            ],
            "response_tweet_id": ["2", "3", "4", "5", "", ""],
            "in_response_to_tweet_id": ["", "1", "2", "3", "4", "99"],
        }
    )
    path = tmp_path / "synthetic_thread.csv"
    rows.to_csv(path, index=False)
    inbound, _, _ = read_twcs(str(path))
    assert dict(zip(inbound["tweet_id"], inbound["thread_id"], strict=True)) == {1: 1, 3: 1, 5: 1, 6: 6}


def test_a_follow_up_carries_its_threads_first_issue_category():
    tweets = pd.DataFrame(
        {
            "tweet_id": [1, 2, 3, 4],
            "thread_id": [1, 1, 3, 4],
            "author_id": ["a", "a", "a", "b"],
            "brand": ["X", "X", "X", "X"],
            "created_at": pd.to_datetime(
                ["2017-11-01 10:00", "2017-11-01 10:05", "2017-11-02 09:00", "2017-11-01 08:00"]
            ),
            "in_response_to_tweet_id": pd.array([None, 10, None, None], dtype="Int64"),
            "text": ["my order never arrived", "thanks!", "my card was charged twice", "hello"],
        }
    )
    conversation = conversation_frame(tweets)
    assert conversation["thread_id"].tolist() == [1, 1, 3, 4]
    assert conversation["message_kind"].tolist() == [ISSUE, THANKS, ISSUE, GREETING]
    category = pd.Series(["delivery", "", "payment", ""])
    assert thread_categories(conversation, category, tweets["created_at"]).tolist() == [
        "delivery",
        "delivery",
        "payment",
        "",
    ]


def test_copies_differing_by_url_mention_hashtag_or_case_share_a_key(sample_conversation):
    assert near_duplicate_key("Hey @AmericanAir my bag is lost https://t.co/a #help") == near_duplicate_key(
        "RT @123: hey @Delta, my bag is lost!! https://t.co/b"
    )
    assert near_duplicate_key("my bag is lost") != near_duplicate_key("my bag is found")
    tweets, conversation = sample_conversation
    texts = pd.Series(tweets["text"].to_numpy(), index=conversation["near_duplicate_key"].to_numpy())
    sizes = texts.groupby(level=0).size()
    copied = sizes[sizes > 1]
    # Measured: 307 groups of copies hold 2,218 tweets ("DM sent", "Thank you!", retweeted promos).
    assert len(copied) >= 200 and copied.sum() >= 1_500
    # Copies written differently (another URL, mention or hashtag) are grouped too.
    varied = texts[texts.index.isin(copied.index)].groupby(level=0).nunique()
    assert (varied > 1).sum() >= VARIED_GROUPS_FLOOR
