"""The Lambda functions' handlers: one module per function (``dispatch``, ``record_state``,
``cancel``, ``monitor``), each turning its event into calls on the control plane, and the
composition root (``wiring``) that builds the store, the launchers and the publisher once per
execution environment. ``functions/<name>/app.py`` only imports a module's ``handler``.
"""

# Imported before pydantic on purpose (this package's first import, before any handler module):
# powertools' batch types build four parser models (SQS, DynamoDB, Kinesis, Kafka; about 30 ms)
# when pydantic is already loaded, only for annotations flowrelay does not use.
# tests/handlers/test_cold_start.py keeps them out of the handlers.
import aws_lambda_powertools.utilities.batch  # noqa: F401
