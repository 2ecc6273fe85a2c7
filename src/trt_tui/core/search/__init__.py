"""Find the FP32 pins automatically: the smallest set of nodes that keeps the outputs within the target.

    job = prepare_search("model.onnx", precision="fp16", targets=["logits:rel_rms<=1e-3"])
    result = job.run(cancel=event, on_progress=callback)
    result.pins, result.rules.text(), result.to_json()      # schema trt_tui.search/1

- targets.py: `OUTPUT:METRIC<=VALUE` targets or a tolerance policy, checked on every sample;
- evaluate.py: one evaluation = the CPU emulation of one pin set run once per sample, reference kept;
- stateful.py: the same for a streaming model, with the contract's closed-loop check as the criterion;
- sensitivity.py: local errors, amplifications and gains from one extra inference per sample;
- errormodel.py: the predicted output error of any pin set, and the small sets it picks;
- strategy.py: nothing pinned, sensitivity, a predicted set verified, pruning by groups, held-out re-check;
- result.py: the answer and its JSON; preset_out.py: the answer as a preset.
"""
