"""Release: the services a workspace runs, and which of their versions takes traffic.

    services.py   the workspace's services: built versions, the local `ship serve`
                  process (start, stop, `run.json`), health and recent traffic

A service holds several bundle versions at once (bundle/ builds them); this stage runs
them. The release policy (champion, canary, shadows: `release.json`) grows here.
"""
