"""Qualitative coding of subculture vocabulary: codebook, prompt normalisation, coder."""
