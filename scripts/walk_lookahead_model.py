#!/usr/bin/env python3
"""CPU model of a candidate state walk for state_output_fused (cuda/NOTES.md, twenty-first session): is the
look-ahead form of v_new as accurate as FLA's?

FLA's walk (and every gdnv kernel today): v_new_c = u_c - w_c round(h_c), h_{c+1} = e^{G_c} h_c + K_c^T Db_c with
Db_c = round(v_new_c e^{G_c - g}). Each step's critical path is the 128-deep product w_c round(h_c) after h_c.
Since h_c = e^{G_{c-1}} h_{c-1} + K_{c-1}^T Db_{c-1}, the same v_new is
    u_c - e^{G_{c-1}} w_c round(h_{c-1}) - round(w_c K_{c-1}^T) Db_{c-1},
whose first product needs only the previous snapshot (it can run a step early) and whose second is 64 deep.
A third form, "pairs" (walk_pairs), takes two chunks per step, so that the step's fixed costs (barriers, the
snapshot) come once per 128 rows. This model runs the three forms with bf16 roundings (w, u, k, v, the snapshot, Db, and M = w_c K_{c-1}^T) and fp32
sums, and prints their errors against the fp64 chunked recurrence: max |v_new| error / max |v_new|, the final
state's relative Frobenius error, and v_new's relative rms error. Debian's numpy: /usr/bin/python3.
"""
import numpy as np


def bf16(x):
    """round to nearest even bf16, returned as float32"""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32)


def f32(x):
    return np.asarray(x, dtype=np.float32)


def chunks(T, K, V, BT, seed, gscale):
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((T, K))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k = bf16(k).astype(np.float64)
    v = bf16(rng.standard_normal((T, V))).astype(np.float64)
    beta = 1 / (1 + np.exp(-rng.standard_normal(T)))
    g = -gscale * np.log1p(np.exp(rng.standard_normal(T) - 2))  # per-token log decay
    out = []
    for c in range(T // BT):
        s = slice(c * BT, (c + 1) * BT)
        gc, kc, b = np.cumsum(g[s]), k[s], beta[s]
        A = np.tril(b[:, None] * (kc @ kc.T) * np.exp(gc[:, None] - gc[None, :]), -1)
        Ti = np.linalg.inv(np.eye(BT) + A)
        out.append(dict(w=Ti @ ((b * np.exp(gc))[:, None] * kc), u=Ti @ (b[:, None] * v[s]), k=kc, G=gc[-1],
                        dec=np.exp(gc[-1] - gc)))
    return out


def walk(cs, mode, K, V, round_wu=True):
    h, h_prev, db_prev, vs = np.zeros((K, V)), None, None, []
    for c, ch in enumerate(cs):
        if mode == "exact":
            vn = ch["u"] - ch["w"] @ h
            db = vn * ch["dec"][:, None]
        else:
            w, u = (f32(bf16(ch["w"])), f32(bf16(ch["u"]))) if round_wu else (f32(ch["w"]), f32(ch["u"]))
            if mode == "fla" or c == 0:
                vn = u - w @ bf16(h)
            else:
                M = bf16(w @ f32(cs[c - 1]["k"]).T)
                vn = u - np.float32(np.exp(cs[c - 1]["G"])) * (w @ bf16(h_prev)) - M @ f32(db_prev)
            vn = vn.astype(np.float64)
            db = bf16(vn * ch["dec"][:, None]).astype(np.float64)
        vs.append(vn)
        h_prev, db_prev = h, db
        h = np.exp(ch["G"]) * h + ch["k"].T @ db
        if mode != "exact":
            h = f32(h).astype(np.float64)
    return np.array(vs), h


def walk_pairs(cs, K, V, round_wu=True):
    """The two-chunk step (a 128-row chunk written with the 64-row chunks' w, u): per pair (1, 2), M = w_2 K_1^T D_1
    (fp64 here, as an intra kernel would form it on chip), w_2' = e^{G_1} w_2 - M w_1 and u_2' = u_2 - M u_1 (then
    rounded as w and u are), so that v_1 and v_2 = [u_1; u_2'] - [w_1; w_2'] round(h) come from one product of the
    pair's snapshot, and h <- e^{G_1 + G_2} h + [K_1; K_2]^T round([e^{G_2} D_1 v_1; D_2 v_2])."""
    h, vs = np.zeros((K, V)), []
    rnd = (lambda x: f32(bf16(x))) if round_wu else f32
    for c in range(0, len(cs) - 1, 2):
        a, b = cs[c], cs[c + 1]
        M = b["w"] @ (a["k"].T * a["dec"][None, :])
        w = np.vstack([rnd(a["w"]), rnd(np.exp(a["G"]) * b["w"] - M @ a["w"])]).astype(np.float64)
        u = np.vstack([rnd(a["u"]), rnd(b["u"] - M @ a["u"])]).astype(np.float64)
        vn = (f32(u) - f32(w) @ bf16(h)).astype(np.float64)
        dec = np.concatenate([np.exp(b["G"]) * a["dec"], b["dec"]])
        db = bf16(vn * dec[:, None]).astype(np.float64)
        vs.extend([vn[:64], vn[64:]])
        h = f32(np.exp(a["G"] + b["G"]) * h + np.vstack([a["k"], b["k"]]).T @ db).astype(np.float64)
    return np.array(vs), h


def main():
    K = V = 128
    for round_wu in (True, False):
        print("w and u rounded to bf16 (FLA)" if round_wu else "w and u in fp32 (the walk's own roundings only)")
        for seed in (1, 2, 3):
            for gscale in (0.1, 1.0):
                cs = chunks(2048, K, V, 64, seed, gscale)
                ve, he = walk(cs, "exact", K, V)
                row = []
                for mode in ("fla", "lookahead", "pairs"):
                    vm, hm = walk_pairs(cs, K, V, round_wu) if mode == "pairs" else walk(cs, mode, K, V, round_wu)
                    row.append("%s %.2e %.2e %.2e" % (mode, np.abs(vm - ve).max() / np.abs(ve).max(),
                                                      np.linalg.norm(hm - he) / np.linalg.norm(he),
                                                      np.sqrt(((vm - ve) ** 2).mean() / (ve ** 2).mean())))
                print("  seed %d gate scale %.1f: %s" % (seed, gscale, " | ".join(row)))


if __name__ == "__main__":
    main()
