"""Bundle: a notebook and a registered model version become a deployable service folder.

    serve_cells.py   which cells go into the service; static checks of the handler
    state.py         values serve cells take from the notebook: captured, kept with the run
    exporter.py      the nbconvert exporter `ship` (`jupyter nbconvert --to ship`)
    schema.py        schema.json from the ONNX graph and the tracked training data
    deploy.py        Dockerfile, k8s/, kserve.yaml, rayserve.py from templates/deploy
    build.py         `ship build` / `%ship build`: all of the above, checked and logged

The runtime that serves a bundle is kernel_magics/serving, copied into each bundle.
"""
