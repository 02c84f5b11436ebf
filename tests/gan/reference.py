"""An independent per-threshold, per-cell evaluation of the spec's marching-squares table (slow)."""

from __future__ import annotations

import math


def _hyp(a, b):
    return math.sqrt(a * a + b * b)


def cell(p00, p10, p11, p01, t, convention="legacy"):
    """(F, U, chi) of one cell, straight from the table of the spec (section 5)."""
    pat = (p00 > t) * 1 + (p10 > t) * 2 + (p11 > t) * 4 + (p01 > t) * 8

    def a1():
        return (p00 - t) / (p00 - p10)

    def a2():
        return (p10 - t) / (p10 - p11)

    def a3():
        return (p01 - t) / (p01 - p11)

    def a4():
        return (p00 - t) / (p00 - p01)

    if pat == 0:
        return 0.0, 0.0, 0.0
    if pat == 15:
        return 1.0, 0.0, 0.0
    if pat == 1:
        return 0.5 * a1() * a4(), _hyp(a1(), a4()), 0.25
    if pat == 2:
        return 0.5 * (1 - a1()) * a2(), _hyp(1 - a1(), a2()), 0.25
    if pat == 4:
        return 0.5 * (1 - a2()) * (1 - a3()), _hyp(1 - a2(), 1 - a3()), 0.25
    if pat == 8:
        return 0.5 * a3() * (1 - a4()), _hyp(a3(), 1 - a4()), 0.25
    if pat == 3:
        return (a2() + a4()) / 2, _hyp(1, a4() - a2()), 0.0
    if pat == 6:
        return 1 - (a1() + a3()) / 2, _hyp(1, a3() - a1()), 0.0
    if pat == 9:
        return (a1() + a3()) / 2, _hyp(1, a3() - a1()), 0.0
    if pat == 12:
        return 1 - (a2() + a4()) / 2, _hyp(1, a2() - a4()), 0.0
    if pat == 7:
        return 1 - 0.5 * a3() * (1 - a4()), _hyp(a3(), 1 - a4()), -0.25
    if pat == 11:
        return 1 - 0.5 * (1 - a2()) * (1 - a3()), _hyp(1 - a2(), 1 - a3()), -0.25
    if pat == 13:
        return 1 - 0.5 * (1 - a1()) * a2(), _hyp(1 - a1(), a2()), -0.25
    if pat == 14:
        return 1 - 0.5 * a1() * a4(), _hyp(a1(), a4()), -0.25
    t00 = (0.5 * a1() * a4(), _hyp(a1(), a4()))
    t10 = (0.5 * (1 - a1()) * a2(), _hyp(1 - a1(), a2()))
    t11 = (0.5 * (1 - a2()) * (1 - a3()), _hyp(1 - a2(), 1 - a3()))
    t01 = (0.5 * a3() * (1 - a4()), _hyp(a3(), 1 - a4()))
    ins, outs = ((t00, t11), (t10, t01)) if pat == 5 else ((t10, t01), (t00, t11))
    if convention == "legacy":
        if pat == 5:
            return 1 - t10[0] - t01[0], t10[1] + t01[1], 0.5
        return 1 - t00[0] + t11[0], t00[1] + t11[1], 0.5
    joined = (p00 + p10 + p11 + p01) / 4 > t
    if joined:
        return 1 - outs[0][0] - outs[1][0], outs[0][1] + outs[1][1], -0.5
    return ins[0][0] + ins[1][0], ins[0][1] + ins[1][1], 0.5


def minkowski_reference(image, thresholds, convention="legacy"):
    """Per threshold, per cell: [[F...], [U...], [chi...]] as lists."""
    h, w = len(image), len(image[0])
    out = [[], [], []]
    for t in thresholds:
        tot = [0.0, 0.0, 0.0]
        for y in range(h - 1):
            for x in range(w - 1):
                v = cell(float(image[y][x]), float(image[y][x + 1]), float(image[y + 1][x + 1]),
                         float(image[y + 1][x]), float(t), convention)
                for i in range(3):
                    tot[i] += v[i]
        for i in range(3):
            out[i].append(tot[i])
    return out
