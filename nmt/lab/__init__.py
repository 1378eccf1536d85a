"""The embedding lab: what did `nn.Embedding` learn? One concern a module:

    stats.py   the numbers: word vectors from pieces, cosine neighbours, analogies, drift, PCA
    tables.py  a run's tables (init, best, any checkpoint) and its token counts
    export.py  word2vec text and TensorBoard-projector TSV files
    plot.py    the 2-D PCA picture of chosen words, before and after training
    report.py  `Lab`: the text of the `nmt embeddings` reports
"""
