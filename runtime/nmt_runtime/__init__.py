"""nmt-runtime: translate with an `nmt export` folder, with numpy, onnxruntime and sentencepiece
only (no torch).

It is also the lower layer of nmt itself: the search (one implementation for torch tensors and
numpy arrays, on the Python array API), the decode options, the tokenizer wrapper, the server and
its page live here, so that a model translates the same way in both.
"""

__version__ = "0.1.0"
