"""Reference numbers for Tests/GenNNTests/LBFGSTests.swift: torch.optim.LBFGS(line_search_fn="strong_wolfe")
on the 2-D Rosenbrock function and on a 6-D quadratic, in float32 (gen's LBFGS keeps vectors in float32).
Prints the loss after each function evaluation and the final point.
Usage: /tmp/gen-anchors/bin/python Tools/lbfgs_reference.py"""
import torch

def run(name, f, x0, max_iter, max_eval, history=100):
    x = torch.tensor(x0, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=max_iter, max_eval=max_eval, history_size=history,
                            tolerance_grad=1e-7, tolerance_change=1e-9, line_search_fn="strong_wolfe")
    losses = []
    def closure():
        opt.zero_grad()
        l = f(x)
        l.backward()
        losses.append(float(l.detach()))
        return l
    opt.step(closure)
    st = opt.state[x]
    print(f"{name}: evals {st['func_evals']} iters {st['n_iter']} final x {[float(v) for v in x.detach()]}")
    print(f"{name} losses: {[float('%.6g' % v) for v in losses]}")

def rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

A = torch.tensor([[4., 1, 0, 0, 0, 0], [1, 3, 1, 0, 0, 0], [0, 1, 5, 1, 0, 0],
                  [0, 0, 1, 2, 0.5, 0], [0, 0, 0, 0.5, 6, 1], [0, 0, 0, 0, 1, 1.5]])
b = torch.tensor([1., -2, 3, 0.5, -1, 2])
def quad(x):
    return 0.5 * x @ (A @ x) - b @ x

run("rosenbrock", rosen, [-1.5, 2.0], 200, 400)
run("rosenbrock_10evals", rosen, [-1.5, 2.0], 1000, 10)
run("quadratic", quad, [0.0] * 6, 100, 200)
print("quadratic solution", [float(v) for v in torch.linalg.solve(A, b)], "min", float(-0.5 * b @ torch.linalg.solve(A, b)))
