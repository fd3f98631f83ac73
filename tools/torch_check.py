#!/usr/bin/env python3
"""torch_check.py — the independent check of nasflat's inference engine (csrc/nf_engine.c).

usage: python3 tools/torch_check.py [--tol 1e-4] FILE...

Each FILE is written by Engine:export (nasflat.engine): a header line
    nasflat-engine 1 space=<nb201|fbnet> arch=<arch string> batch=<B> classes=<K> input=<n> params=<n> output=<n>
then little-endian float32 arrays: the input (B x 3 x 32 x 32), the unfolded parameters in the engine's op order,
the engine's output (B x K logits). This script rebuilds the network in PyTorch from the space's definition
(NAS-Bench-201's CIFAR network: ReLU-conv-BN ops, avg pooling with count_include_pad=False, x * 0 for none, the
residual reduction block; FBNet's CIFAR-100 network of HW-NAS-Bench: inverted-residual blocks with grouped 1x1
convs and channel shuffle), loads the parameters in module order (conv weight, then BN weight, bias,
running_mean, running_var; linear weight, bias), runs it in eval mode (BN with running statistics, eps 1e-5)
and compares: max |torch - engine| / max |torch| <= tol. Prints one line per file; exit status 1 if any file
fails, 2 on a malformed file.
"""
import sys

import numpy as np
import torch
import torch.nn as nn


class Reader:
    def __init__(self, arr):
        self.a = arr
        self.pos = 0

    def take(self, shape):
        n = int(np.prod(shape))
        if self.pos + n > self.a.size:
            raise ValueError("parameter array too short")
        out = torch.from_numpy(self.a[self.pos:self.pos + n].copy()).reshape(shape)
        self.pos += n
        return out


def load_conv(conv, r):
    conv.weight.data.copy_(r.take(tuple(conv.weight.shape)))


def load_bn(bn, r):
    c = bn.num_features
    bn.weight.data.copy_(r.take((c,)))
    bn.bias.data.copy_(r.take((c,)))
    bn.running_mean.copy_(r.take((c,)))
    bn.running_var.copy_(r.take((c,)))


def load_linear(lin, r):
    lin.weight.data.copy_(r.take(tuple(lin.weight.shape)))
    lin.bias.data.copy_(r.take(tuple(lin.bias.shape)))


# ----------------------------------------------------------------------------------------------- NAS-Bench-201
NB_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


class ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, bn=True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(cout) if bn else None

    def load(self, r):
        load_conv(self.conv, r)
        if self.bn is not None:
            load_bn(self.bn, r)

    def forward(self, x):
        x = self.conv(self.relu(x))
        return self.bn(x) if self.bn is not None else x


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def nb_op(name, c):
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError("unknown op " + name)


def parse_nb201(arch):
    nodes = arch.strip("|").split("|+|")
    ops = []
    for j, node in enumerate(nodes, start=1):
        parts = node.strip("|").split("|")
        assert len(parts) == j, arch
        for i, p in enumerate(parts):
            name, src = p.split("~")
            assert int(src) == i, arch
            ops.append((j, i, name))
    return ops   # string order: (1,0) (2,0) (2,1) (3,0) (3,1) (3,2)


class Cell(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.spec = [(j, i) for j, i, _ in ops]
        self.edges = nn.ModuleList([nb_op(name, c) for _, _, name in ops])

    def load(self, r):
        for e in self.edges:
            if isinstance(e, ReLUConvBN):
                e.load(r)

    def forward(self, x):
        nodes = [x]
        for j in range(1, 4):
            terms = [self.edges[k](nodes[i]) for k, (jj, i) in enumerate(self.spec) if jj == j]
            s = terms[0]
            for t in terms[1:]:
                s = s + t
            nodes.append(s)
        return nodes[3]


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2, 1)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1)
        self.pool = nn.AvgPool2d(2, stride=2, padding=0)
        self.short = nn.Conv2d(cin, cout, 1, bias=False)

    def load(self, r):
        self.conv_a.load(r)
        self.conv_b.load(r)
        load_conv(self.short, r)

    def forward(self, x):
        return self.short(self.pool(x)) + self.conv_b(self.conv_a(x))


class NB201(nn.Module):
    def __init__(self, arch, classes):
        super().__init__()
        ops = parse_nb201(arch)
        self.stem_conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        layers, c = [], 16
        for stage in range(3):
            if stage > 0:
                layers.append(ResBlock(c, 2 * c))
                c *= 2
            for _ in range(5):
                layers.append(Cell(ops, c))
        self.cells = nn.ModuleList(layers)
        self.last_bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, classes)

    def load(self, r):
        load_conv(self.stem_conv, r)
        load_bn(self.stem_bn, r)
        for m in self.cells:
            m.load(r)
        load_bn(self.last_bn, r)
        load_linear(self.fc, r)

    def forward(self, x):
        x = self.stem_bn(self.stem_conv(x))
        for m in self.cells:
            x = m(x)
        x = torch.relu(self.last_bn(x))
        return self.fc(x.mean(dim=(2, 3)))


# ----------------------------------------------------------------------------------------------- FBNet
FB_BLOCKS = {0: (3, 1, 1), 1: (3, 1, 2), 2: (3, 3, 1), 3: (3, 6, 1), 4: (5, 1, 1), 5: (5, 1, 2), 6: (5, 3, 1),
             7: (5, 6, 1)}   # kernel, expansion, groups; 8 = skip
FB_NAMES = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"]
FB_LAYERS = [1, 4, 4, 4, 4, 4, 1]
FB_CH = [16, 24, 32, 64, 112, 184, 352]
FB_STRIDE = [1, 1, 2, 2, 1, 2, 1]


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, groups, relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def load(self, r):
        load_conv(self.conv, r)
        load_bn(self.bn, r)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.relu else x


def shuffle(x, g):
    b, c, h, w = x.shape
    return x.view(b, g, c // g, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class IRBlock(nn.Module):
    def __init__(self, cin, cout, stride, block):
        super().__init__()
        k, e, g = FB_BLOCKS[block]
        m = cin * e
        self.g = g
        self.expand = ConvBN(cin, m, 1, 1, g, True)
        self.dw = ConvBN(m, m, k, stride, m, True)
        self.project = ConvBN(m, cout, 1, 1, g, False)
        self.res = cin == cout and stride == 1

    def load(self, r):
        self.expand.load(r)
        self.dw.load(r)
        self.project.load(r)

    def forward(self, x):
        y = self.expand(x)
        if self.g > 1:
            y = shuffle(y, self.g)
        y = self.project(self.dw(y))
        return y + x if self.res else y


class Skip(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = ConvBN(cin, cout, 1, stride, 1, True) if (stride != 1 or cin != cout) else None

    def load(self, r):
        if self.conv is not None:
            self.conv.load(r)

    def forward(self, x):
        return self.conv(x) if self.conv is not None else x


class FBNet(nn.Module):
    def __init__(self, arch, classes):
        super().__init__()
        parts = arch.split("-")
        assert len(parts) == 22, arch
        codes = [int(p) if p.isdigit() else FB_NAMES.index(p) for p in parts]
        self.stem = ConvBN(3, 16, 3, 1, 1, True)
        layers, cin, li = [], 16, 0
        for st in range(7):
            for i in range(FB_LAYERS[st]):
                cout, s = FB_CH[st], (FB_STRIDE[st] if i == 0 else 1)
                b = codes[li]
                layers.append(Skip(cin, cout, s) if b == 8 else IRBlock(cin, cout, s, b))
                cin, li = cout, li + 1
        self.layers = nn.ModuleList(layers)
        self.head = ConvBN(cin, 1504, 1, 1, 1, True)
        self.fc = nn.Linear(1504, classes)

    def load(self, r):
        self.stem.load(r)
        for m in self.layers:
            m.load(r)
        self.head.load(r)
        load_linear(self.fc, r)

    def forward(self, x):
        x = self.stem(x)
        for m in self.layers:
            x = m(x)
        x = self.head(x)
        return self.fc(x.mean(dim=(2, 3)))


# ----------------------------------------------------------------------------------------------- main
def check(path, tol):
    with open(path, "rb") as f:
        header = f.readline().decode("ascii").split()
        body = f.read()
    if len(header) < 2 or header[0] != "nasflat-engine" or header[1] != "1":
        raise ValueError("not a nasflat-engine export")
    h = dict(kv.split("=", 1) for kv in header[2:])
    n_in, n_par, n_out = int(h["input"]), int(h["params"]), int(h["output"])
    B, K = int(h["batch"]), int(h["classes"])
    arr = np.frombuffer(body, dtype="<f4")
    if arr.size != n_in + n_par + n_out:
        raise ValueError("expected %d floats, found %d" % (n_in + n_par + n_out, arr.size))
    x = torch.from_numpy(arr[:n_in].copy()).reshape(B, 3, 32, 32)
    ref = torch.from_numpy(arr[n_in + n_par:].copy()).reshape(B, K)
    net = NB201(h["arch"], K) if h["space"] == "nb201" else FBNet(h["arch"], K)
    r = Reader(arr[n_in:n_in + n_par])
    net.load(r)
    if r.pos != n_par:
        raise ValueError("the network used %d of %d parameters" % (r.pos, n_par))
    net.eval()
    with torch.no_grad():
        y = net(x)
    scale = float(y.abs().max())
    err = float((y - ref).abs().max()) / (scale if scale > 0 else 1.0)
    ok = err <= tol and bool(torch.isfinite(y).all())
    print("%s %s %s batch %d: max rel error %.3g (tol %g, |logit| max %.4g)"
          % ("ok  " if ok else "FAIL", h["space"], h["arch"], B, err, tol, scale))
    return ok


def main(argv):
    tol = 1e-4
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--tol":
            tol = float(argv[i + 1])
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if not files:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    ok = True
    for p in files:
        try:
            ok = check(p, tol) and ok
        except (ValueError, KeyError, OSError) as e:
            print("nasflat torch_check: %s: %s" % (p, e), file=sys.stderr)
            return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
