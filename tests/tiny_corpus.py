"""The tiny inline corpus: enough for a model that separates the obvious cases, fast enough for unit tests.

A module of its own (not conftest) so tests can import it: tests/browser has a conftest too, and two
modules named `conftest` collide under pytest-xdist.
"""

from __future__ import annotations

from moderation.comment import Comment, Label, LabelledComment


def _spam(text: str, **meta: str) -> LabelledComment:
    return LabelledComment(Comment(content=text, **meta), Label.SPAM, "tiny")


def _ham(text: str, **meta: str) -> LabelledComment:
    return LabelledComment(Comment(content=text, **meta), Label.HAM, "tiny")


# A dozen-odd comments: enough for a model that separates the obvious cases, fast enough for unit tests.
TINY_CORPUS: tuple[LabelledComment, ...] = (
    _spam("Check out my channel http://bit.ly/abc123 subscribe please!!!", author_name="Best Music Promo"),
    _spam("Cheap viagra cialis online, no prescription http://pills-shop.xyz", author_name="cheap pills"),
    _spam("Great post! Visit my site for best casino bonus http://casino-win.top", author_name="casino bonus"),
    _spam("Earn $5000 a week from home, contact my account manager on WhatsApp +1 555 0100"),
    _spam("Bitcoin investment doubles in 7 days, message me on Telegram @cryptoking"),
    _spam("Subscribe to my channel and like my videos http://youtube.com/user/spammer"),
    _spam("Buy essays online, best writing service http://essays-cheap.info", author_name="essay writer"),
    _spam("Need a quick loan? Approved in minutes http://fastloan.click call now"),
    _ham("Thanks, this fixed my build. The trick with the PATH variable was what I missed."),
    _ham("I disagree with the second point, the benchmark ignores warm-up time.", author_name="Dana"),
    _ham("Lovely photos of the coast, we walked the same path last summer.", author_name="Marie"),
    _ham("Danke für die Erklärung, jetzt verstehe ich den Unterschied.", author_name="Jonas"),
    _ham("See the docs at https://docs.python.org/3/library/re.html for the flags.", author_name="Sam"),
    _ham("This song reminds me of my childhood, still love it after all these years."),
    _ham("Could you share the recipe for the sauce? It looks delicious."),
    _ham("Great explanation, thanks for taking the time to write it.", author_name="Lee"),
)
