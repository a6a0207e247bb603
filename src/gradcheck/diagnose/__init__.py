"""Stage 6 — diagnosis: patterns relating the analytic and numeric gradients of a failing
tensor and the one sentence that names the likely bug.

``evidence``  the Diagnosis record, one tensor's context, evidence → confidence
``patterns``  constant factors, transpose, swap, zeros, regions; ``diagnose_tensor`` tries all
``layouts``   masks, one-hot terms, flips, shifts, one time step's rank, one wrong factor
``values``    patterns that need the tensor's value or the terms of its sum
``groups``    which tensors of a group sharing an upstream gradient fail; no-pattern sentence
``attach``    puts the sentence on each failing tensor of a check
"""
