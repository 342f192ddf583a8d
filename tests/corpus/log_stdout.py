"""``log_stdout=True``: what a task prints is logged through the run's logger.

Source: Prefect 1.x docs, core/idioms/logging.md ("Logging stdout", functional and imperative
tabs, as written there, including ``Flow("log-stdout", tasks=[my_task])``). Stated outcome:
"anytime you send output to stdout (such as print()) it will be logged using the Prefect
logger".
"""

from flowrelay import Flow, Task, task


@task(log_stdout=True)
def my_task():
    print("This will be logged!")


class MyTask(Task):
    def run(self):
        print("This will be logged too!")


flow = Flow("corpus-log-stdout", tasks=[my_task])

my_class_task = MyTask(log_stdout=True)
flow.add_task(my_class_task)

EXPECTED = {
    "state": "Success",
    "tasks": {my_task: ("Success", None), my_class_task: ("Success", None)},
    "logged": ["This will be logged!", "This will be logged too!"],
}
