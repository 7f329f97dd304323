"""ocp_agentd: the supervisor that spawns, guards, restarts and stops every worker.

One module per concern (a change goes where its symptom is):

- :mod:`.loop`: :class:`Supervisor`, the main loop (signals, start in
  dependency order, reap, stop in reverse order) that the parts below mix into;
- :mod:`.process`: one child's state machine (:class:`~.process.Child`): every
  edge in :data:`~.process.EDGES` with why it is taken, every state change
  through :meth:`~.process.Child.to`; restart backoff, hang and start timeouts
  (the state names themselves are :mod:`engine.states`, which workers use too);
- :mod:`.spawn`: the child table and each child's start (fork into
  :func:`~.spawn.run_worker`, spawn a program, preload the workers' modules);
- :mod:`.stderr`: the workers' stderr pipes, their last words in status;
- :mod:`.reload`: SIGHUP or ``engine reload``, restarting only what changed;
- :mod:`.answers`: what the ctl's requests and ``engine status`` get, and the
  supervisor board the exporters read;
- :mod:`.leftovers`: what a supervisor killed with SIGKILL left on its home;
- :mod:`.sdnotify`: systemd's notify protocol (READY, STATUS, WATCHDOG).

What it leaves to others: forking, killing and reaping are :mod:`engine.osapi`
(the seam tests fake), the control socket is :mod:`engine.control`, the
shared-memory segments :mod:`engine.ipc`, what a worker sees
:mod:`engine.runtime`.

The names below are what the commands and tests import from here.
"""
from engine.supervisor.leftovers import clean_dead_home, pid_of_running
from engine.supervisor.loop import Supervisor, replace_section
from engine.supervisor.spawn import preload, run_worker

__all__ = ["Supervisor", "clean_dead_home", "pid_of_running", "preload", "replace_section", "run_worker"]
