"""Bundle: a notebook and a registered model version become a deployable service folder.

    exporter.py      the nbconvert exporter `ship` (`jupyter nbconvert --to ship`)
    version.py       which model version the bundle serves, and why
    schema.py        schema.json from the ONNX graph and the tracked training data
    reference.py     reference.parquet: the drift reference (monitor/reference.py's profile)
    requirements.py  what the serve cells' state and the handler's imports need installed
    deploy.py        Dockerfile, k8s/, kserve.yaml, rayserve.py from templates/deploy
    build.py         `ship build` / `%ship build`: all of the above, checked and logged

Which cells are serve cells, and the values they take from the notebook, are tracking's
(tracking/serve_cells.py, tracking/serve_state.py): captured with the run. The runtime
that serves a bundle is kernel_magics/serving, copied into each bundle; running it
locally is release/'s.
"""
