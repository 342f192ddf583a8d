"""The acceptance corpus of issue 14: flows written as the seeds' engine (Prefect 1.x) documents
them, converted only by writing ``flowrelay`` where its imports say ``prefect``.

Each module names, in its docstring, the documentation it comes from and the outcome that
documentation states, and defines:

``flow``
    the flow, built at import (as a user's flow file does);
``EXPECTED``
    what a run gives, as a dict:

    - ``"state"``: the flow run's final state name (``"Success"``, ``"Failed"``);
    - ``"message"`` (optional): a substring of the flow run's message;
    - ``"tasks"``: ``{task or slug: (state name, value)}``; a key is the task object the flow
      holds (what ``state.result[task]`` takes) or its slug; ``ANY`` (``unittest.mock``)
      matches any value, a function (a predicate) any value it accepts;
    - ``"messages"`` (optional): ``{task or slug: substring of the task state's message}``;
    - ``"parameters"`` (optional): the parameters of the run;
    - ``"env"`` (optional): environment variables the documented usage sets for the run
      (``FLOWRELAY__FLOWS__CHECKPOINTING``, ``FLOWRELAY__CONTEXT__SECRETS__X``); a value
      ``"{tmp}"`` is replaced by a fresh directory;
    - ``"output"`` (optional): substrings the run prints or logs; ``"logged"``: substrings of
      what it logs (through ``logging``);
    - ``"variants"`` (optional): runs after the first, in order (a cache hit, other
      parameters), each a dict of the same keys plus ``"context"`` (values set with ``with
      flowrelay.context(...)`` around ``flow.run``) or ``"same_process": True`` (a cache in
      memory): those two kinds only run under ``flow.run``;
    - ``"written"`` (optional): ``{path under {tmp}: text predicate}``, files the flow writes;
      ``"results"``: ``{path under {tmp}: value}``, results it checkpoints (read back with
      ``LocalResult``); ``"absent"``: paths it must not write; ``"s3_keys"``: objects an
      ``S3Result`` writes to the bucket named by ``CORPUS_BUCKET``.

Every run also gets ``FLOWRELAY__HOME_DIR={tmp}/home`` before the module is imported, so a
``LocalResult()`` made at import keeps its files there.

``tests/sdk/test_corpus.py`` runs every module under ``flow.run()`` and under ``flowrelay
run-local``; ``tests/cli/test_corpus_on_dev_stack.py`` runs them through the dev stack.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

#: The corpus's modules, by name (``tests.corpus.<name>``).
NAMES: list[str] = sorted(
    module.name
    for module in pkgutil.iter_modules([str(Path(__file__).parent)])
    if module.name != "conftest"
)
