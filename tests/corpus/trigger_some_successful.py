"""``some_successful(at_least=..., at_most=...)`` thresholds, counting mapped children.

Source: Prefect 1.x API reference, ``prefect.triggers.some_successful`` ("Runs if some amount of
upstream tasks succeed. This amount can be specified as an upper bound (at_most) or a lower
bound (at_least), and can be provided as an absolute number or a percentage of upstream
tasks") and core/concepts/mapping.md ("trigger functions will be applied to all of the mapped
children"). Stated outcome: with 3 of 4 children succeeding, ``at_least=3`` and
``at_least=0.5`` run, ``at_least=4`` fails its trigger (``TriggerFailed``).
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.triggers import some_successful


@task
def fetch(page):
    if page == 4:
        raise IOError("page 4 is missing")
    return page


@task(trigger=some_successful(at_least=3))
def enough_pages(pages):
    return "three pages are enough"


@task(trigger=some_successful(at_least=0.5))
def half_the_pages(pages):
    return "half the pages are enough"


@task(trigger=some_successful(at_least=4))
def every_page(pages):
    return "every page"


with Flow("corpus-trigger-some-successful") as flow:
    pages = fetch.map([1, 2, 3, 4])
    three = enough_pages(pages)
    half = half_the_pages(pages)
    every = every_page(pages)

flow.set_reference_tasks([three, half])

EXPECTED = {
    "state": "Success",
    "tasks": {
        three: ("Success", "three pages are enough"),
        half: ("Success", "half the pages are enough"),
        every: ("TriggerFailed", ANY),
    },
}
