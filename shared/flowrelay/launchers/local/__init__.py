"""Local targets: runs as processes on the machine that hosts the dispatcher (the dev stack).
``LocalLauncher`` (``launcher``) starts them, under the guard (``guard``) that ends them with
their host; ``events`` reads the event each leaves when it exits."""
