"""The verify suite's logic; ``verify/`` holds only thin pytest checks over it.

- ``target``: endpoints and expectations of the testnet under verification (record or
  inventory data);
- ``session``: one run's connections and shared reads;
- ``membership``: contracts, registrations, canonical set, node_info;
- ``replication``: convergence (and ``wait_converged``), sequence gaps and duplicates;
- ``opened``, ``envelopes``, ``signatures``, ``usage``: every stored envelope judged once,
  its signatures and its price;
- ``plugin``: options, groups, ``expect_none``, the JSON summary.

Each check returns its problems, one line each, naming target, expected and observed.
"""
