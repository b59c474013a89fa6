"""random-chaos: seeded random events checked against a model, sized for CI.

Steps:
1. Deploy 3 nodes and 1 gateway (payer reports every 20 s).
2. From the seed, draw 24 events in steps (dmsg's shape: how many this step, which by
   weight, kept by probability) over the default table: publish bursts straight to nodes and
   through gateways, stop/kill/start/pause/restart, partitions (one node, two groups,
   asymmetric) and heal, proxy latency/bandwidth/reset/timeout, clock skew, churn, gateways,
   database stop, chain reorg and mining stop, rates, deposits and withdrawal requests. The
   schedule is written to schedule.json before anything runs.
3. Play the steps; every 8 events poll snapshots (databases, chain, health) against the
   model's prediction to a 60 s settle deadline; the first disagreement ends the events.
4. Final heal, settle, the final checkpoint.
5. Check: each model property (held, intact, contiguous, clock, unique, payer, usage,
   monotonic, canonical, serving, balance, rates), every event ran, history set, verify suite.
"""

from shakedown.chaos.engine import ChaosSpec, chaos_scenario

SCENARIO = chaos_scenario(
    "random-chaos", ChaosSpec(events=24, check_every=8, duration_s=240, settle_s=60),
    description="24 seeded random events, checked against the model every 8 and at the end")
