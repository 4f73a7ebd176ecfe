"""Rendering step results for people: step summaries, PR/MR comments."""
