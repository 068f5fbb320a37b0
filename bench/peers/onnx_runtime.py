"""An MLServer runtime for bench/serving.py: one ONNX model on onnxruntime, one thread.

Runs inside MLServer's own virtual environment (bench/.venv-mlserver), not the
project's: bench/serving.py puts this folder on its PYTHONPATH and names
``onnx_runtime.OnnxRuntime`` as the model's ``implementation`` in model-settings.json.
The request's one tensor is decoded with MLServer's ``NumpyRequestCodec`` and fed to the
model's first input; every model output (``label``, ``probabilities``) is answered as
one NumPy-encoded output.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, NumpyRequestCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntime(MLModel):
    """``parameters.uri``: the .onnx file."""

    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # onnxruntime ignores OMP_NUM_THREADS
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(await get_model_uri(self.settings), options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyRequestCodec.decode_request(payload)
        results = self._session.run(None, {self._input: array.astype(np.float32, copy=False)})
        return InferenceResponse(
            model_name=self.name, model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, value)
                     for name, value in zip(self._outputs, results, strict=True)])
