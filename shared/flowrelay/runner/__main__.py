"""``python -m flowrelay.runner``: the flow runner process."""

from flowrelay.runner import main

main()
