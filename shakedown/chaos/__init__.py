"""The chaos engine (``shakedown chaos``, scenario ``random-chaos``): seeded random events on a
fresh testnet, a model that predicts what must be observed, snapshots compared with it every K
events and at the end, replay and shrink of a failing schedule.

One seam per module: ``events`` (the table and its options), ``generate`` / ``schedule`` (the
seeded schedule and its file), ``model`` (pure prediction), ``observed`` / ``judge`` (what a
snapshot saw and how it is judged), ``snapshot`` (reads through the observers), ``faults``
(the one adapter to the fault injector), ``perform`` (running one event), ``engine`` (a run on
the scenario runner's lifecycle), ``shrink``, ``cli``.

Hypothesis: the generator and the model are tested with it (property tests and a
``RuleBasedStateMachine`` over the model), but it neither generates nor shrinks the schedules
a run plays. A run's schedule must come from a user's ``--seed`` and be written, whole, as the
replay artifact before anything runs; Hypothesis draws from its own engine and keeps what it
found in its own database. Each candidate of a shrink costs a fresh testnet for tens of
seconds, and the budget must be a handful of runs and a wall-time bound, where Hypothesis's
shrinker expects hundreds of cheap in-process calls. So ``shrink`` is a bounded delta
debugging over the recorded schedule, and Hypothesis checks that it returns a failing,
one-minimal subset on cheap synthetic predicates.
"""
