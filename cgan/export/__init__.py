"""The exporter (torch, onnx): pair -> ONNX FP32/FP16 (+pre/post) -> TensorRT engines, with parity checks."""
