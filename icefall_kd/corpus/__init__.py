"""The embedded corpus: synthesised English read speech in LibriSpeech's layout."""
