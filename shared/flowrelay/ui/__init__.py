"""The web UI (``flowrelay ui``, the ``flowrelay[ui]`` extra): a local web app on 127.0.0.1
that shows the stack the CLI talks to, runs, their timelines and logs, flows, targets, limits and
dead letters, and acts on it through the same ``flowrelay.operations`` the CLI calls."""
