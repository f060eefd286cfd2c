"""A value computed later: once, by a background thread or by its first reader."""

import threading
import time

import pytest

from explorer.deferred import Deferred


def counting(value=42, delay=0.0):
    calls = []

    def compute():
        calls.append(threading.current_thread().name)
        time.sleep(delay)
        return value

    return compute, calls


def test_a_reader_computes_it_when_nothing_started_it():
    compute, calls = counting()
    deferred = Deferred(compute)
    assert not deferred.done
    assert deferred.result() == 42 and deferred.result() == 42
    assert calls == [threading.current_thread().name]  # here, once
    assert deferred.done and deferred.wait(0) and not deferred.start()


def test_started_in_the_background_readers_wait_for_the_one_computation():
    compute, calls = counting(delay=0.2)
    deferred = Deferred(compute)
    assert deferred.start() and not deferred.start()
    values = []
    readers = [threading.Thread(target=lambda: values.append(deferred.result())) for _ in range(4)]
    for reader in readers:
        reader.start()
    assert deferred.result() == 42
    for reader in readers:
        reader.join()
    assert values == [42] * 4 and calls == ["explorer-deferred"]


def test_callbacks_run_once_done_and_at_once_when_registered_late():
    compute, _ = counting(delay=0.1)
    deferred = Deferred(compute)
    seen = []
    deferred.on_done(lambda d: seen.append(("early", d.done, d.result())))
    deferred.start()
    assert deferred.wait(10)  # returns once the callbacks have run
    assert seen == [("early", True, 42)]
    deferred.on_done(lambda d: seen.append(("late", d.result())))
    assert seen[-1] == ("late", 42)


def test_a_failure_is_kept_and_raised_to_every_reader():
    def broken():
        raise ValueError("no SVM today")

    deferred = Deferred(broken)
    deferred.start()
    assert deferred.wait(10) and deferred.done
    for _ in range(2):
        with pytest.raises(ValueError, match="no SVM today"):
            deferred.result()
    assert isinstance(deferred.error, ValueError)


def test_a_callback_may_take_a_lock_that_a_waiting_reader_holds():
    """The callbacks run outside the computation's lock: a reader holding the app's lock while it
    waits for the value does not deadlock with a callback that needs that lock."""
    app_lock = threading.RLock()
    compute, _ = counting(delay=0.2)
    deferred = Deferred(compute)
    redrawn = []

    def redraw(_):
        with app_lock:
            redrawn.append(True)

    deferred.on_done(redraw)
    deferred.start()
    with app_lock:
        assert deferred.result() == 42
    assert deferred.wait(10) and redrawn == [True]


def test_a_python_that_exits_while_the_column_is_computed_waits_for_it():
    """Python waits for the background computation at exit (atexit handlers run after): as a
    daemon thread it was stopped wherever it was at interpreter shutdown, inside torch or libsvm
    at times, which aborted the process ("terminate called without an active exception", exit
    status 134, seen once in a pytest run)."""
    import subprocess
    import sys

    probe = ("import atexit\nfrom explorer.manifold import ManifoldApp\n"
             "app = ManifoldApp(n_correct=300)\napp.widget\n"
             "atexit.register(lambda: print('done at exit:', app.result.result.geometry.svm.done))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "done at exit: True" in done.stdout
