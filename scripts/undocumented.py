"""List exported callables whose parameters lack a docments comment (issue 23, "docs that answer").

Usage: python scripts/undocumented.py [--json] [MODULE ...]   (modules as in fitness_ppo/, e.g. fit rules)
Prints one line per callable with its undocumented parameters and a total; always exits 0.
A parameter counts as documented when `fastcore.docments.docments(obj, full=True)` gives it a comment;
a pydantic model's field also counts when it has `Field(description=...)`. `self`, `cls`, `*args` and
`**kwargs` are skipped (pass-throughs), and so are the return value, members inherited from elsewhere, and a class's
`__init__` inherited from outside the package (e.g. a `logging.Formatter` subclass's)."""
import importlib, inspect, json, pkgutil, sys, warnings
from pathlib import Path

from fastcore.docments import docments

SKIP = {'self', 'cls', 'return'}


def _params(obj):
    "Parameter name -> documented? for one function or class (its __init__, or a pydantic model's fields)."
    try: d = docments(obj, full=True)
    except Exception: return {}
    out = {}
    for name, info in d.items():
        if name in SKIP or info.get('kind') in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD): continue
        out[name] = bool(info.get('docment'))
    fields = getattr(obj, 'model_fields', None) if inspect.isclass(obj) else None
    if isinstance(fields, dict):
        for name, f in fields.items(): out[name] = out.get(name, False) or bool(getattr(f, 'description', None))
    return out


def _inherited_init(obj) -> bool:
    "Whether `obj` is a class whose `__init__` comes from outside fitness_ppo (e.g. `logging.Formatter`'s)."
    if not inspect.isclass(obj) or '__init__' in vars(obj) or getattr(obj, 'model_fields', None) is not None:
        return False
    module = getattr(obj.__init__, '__module__', None)
    return module is not None and not module.startswith('fitness_ppo')


def _members(cls, mod):
    "Public methods defined in `cls` itself (not inherited), in the module `mod`."
    for name, v in vars(cls).items():
        if name.startswith('_') and name != '__call__': continue
        f = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
        if isinstance(f, property): f = f.fget
        if inspect.isfunction(f) and getattr(f, '__module__', None) == mod: yield f'{cls.__name__}.{name}', f


def undocumented(mods=None):
    "`[(module, qualified name, [undocumented params])]` over the exported names of `fitness_ppo`'s modules."
    import fitness_ppo
    names = mods or [m.name for m in pkgutil.iter_modules(fitness_ppo.__path__) if not m.name.startswith('_')]
    rows = []
    for short in names:
        modname = f'fitness_ppo.{short}'
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            try: mod = importlib.import_module(modname)
            except Exception as e:
                print(f'# {modname}: not imported ({type(e).__name__}: {e})', file=sys.stderr); continue
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, '__module__', None) != modname:
                continue
            items = [(name, obj)] + (list(_members(obj, modname)) if inspect.isclass(obj) else [])
            if _inherited_init(obj): items = items[1:]  # its parameters are documented where its `__init__` is
            for qual, o in items:
                missing = [p for p, ok in _params(o).items() if not ok]
                if missing: rows.append((short, qual, missing))
    return rows


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    rows = undocumented(args or None)
    if '--json' in sys.argv:
        print(json.dumps([dict(module=m, name=n, undocumented=p) for m, n, p in rows], indent=1))
    else:
        for m, n, p in rows: print(f'{m:13} {n:40} {", ".join(p)}')
        print(f'# {len(rows)} exported callables with undocumented parameters '
              f'({sum(len(p) for *_, p in rows)} parameters)')
    sys.exit(0)
