"""The course script's training loop, written its way, as the speed baseline.

Random batches of 256 from a shuffled loader, tensors built per batch in Python from ASCII codes
(sorted by length for pack_padded_sequence), test evaluation in batches of 256. Its bug (return
inside the batch loop) is fixed so that every epoch sees every batch; its >127 crash cannot occur
here because the data is ASCII.
"""

from __future__ import annotations

import random
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class CourseRNN(nn.Module):
    def __init__(self, n_chars=128, hidden=100, n_classes=18, n_layers=2):
        super().__init__()
        self.embedding = nn.Embedding(n_chars, hidden)
        self.gru = nn.GRU(hidden, hidden, n_layers, bidirectional=True)
        self.fc = nn.Linear(hidden * 2, n_classes)
        self.hidden, self.n_layers = hidden, n_layers

    def forward(self, x, lengths):  # x: (seq, batch), the course's layout
        h0 = torch.zeros(self.n_layers * 2, x.size(1), self.hidden)
        packed = pack_padded_sequence(self.embedding(x), lengths.tolist())
        _, hidden = self.gru(packed, h0)
        return self.fc(torch.cat([hidden[-2], hidden[-1]], 1))


def make_variables(names, countries, label_list):
    seqs = [[ord(c) for c in n] for n in names]
    lengths = torch.LongTensor([len(s) for s in seqs])
    x = torch.zeros(len(seqs), int(lengths.max())).long()
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        x[i, :n] = torch.LongTensor(s)
    lengths, order = lengths.sort(0, descending=True)
    x = x[order].t()
    y = torch.LongTensor([label_list.index(c) for c in countries])[order]
    return x, lengths, y


def run_epoch(model, optimizer, train_rows, test_rows, label_list, batch_size=256) -> float:
    """One course-style epoch (train, then test in batches); returns seconds."""
    t0 = time.perf_counter()
    rows = train_rows[:]
    random.shuffle(rows)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for i in range(0, len(rows), batch_size):
        names, countries = zip(*rows[i : i + batch_size], strict=True)
        x, lengths, y = make_variables(names, countries, label_list)
        loss = criterion(model(x, lengths), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_rows), batch_size):
            names, countries = zip(*test_rows[i : i + batch_size], strict=True)
            x, lengths, y = make_variables(names, countries, label_list)
            correct += (model(x, lengths).argmax(1) == y).sum().item()
    return time.perf_counter() - t0
