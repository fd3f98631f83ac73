#!/usr/bin/env python3
"""Regret of `nasflat search --measure local` on this machine (docs/engine.md, "A search on this machine").

  python3 tools/local_regret.py budgets                 # the 10/25/50 % quantiles of the full-space measurement
  python3 tools/local_regret.py search_q1_s1.json ...   # per search: pick, oracle, regret (pp of CIFAR-10 test)

Reads the whole NB201 space measured on this machine (`nasflat measure --space nb201 --all --repeats 5 --warmup 1
--seed 3 --out /tmp/localfull/nb201_all.csv`) and the data's accuracy table; the oracle is the best CIFAR-10
validation accuracy among the cells that measurement puts under the budget, scored by its test accuracy.
"""
import csv,json,os,sys
acc={r['arch_string']:(float(r['cifar10_valid']),float(r['cifar10_test'])) for r in csv.DictReader(open('/work/shared/data/nb201_accuracy.csv'))}
rows=list(csv.reader(open(os.environ.get('LOCAL_ALL', '/tmp/localfull/nb201_all.csv'))))
h=rows[0]; lat={r[1]:float(r[2]) for r in rows[1:] if len(r)>2 and r[2]}
print('measured cells',len(lat))
vals=sorted(lat.values())
def q(p): return vals[int(p*(len(vals)-1))]
if len(sys.argv)>1 and sys.argv[1]=='budgets':
    print(' '.join('%.4f'%q(p) for p in (0.10,0.25,0.50))); sys.exit()
for path in sys.argv[1:]:
    d=json.load(open(path))
    B=d['budgets_ms'][0] if isinstance(d['budgets_ms'],list) else list(d['budgets_ms'].values())[0]
    feas=[a for a,l in lat.items() if l<=B and a in acc]
    best=max(feas,key=lambda a:acc[a][0])
    p=d['pick']
    test=p['report']; 
    print('%s budget %.3f ms: pick %.3f ms (full-space run %.3f ms) test %.2f; oracle %s %.3f ms test %.2f; regret %.2f pp; n feasible %d; measurements %d'%(path,B,p['ms']['local'],lat.get(p['arch'],float('nan')),test,best,lat[best],acc[best][1],acc[best][1]-test,len(feas),d['n_measurements'] if not isinstance(d['n_measurements'],dict) else list(d['n_measurements'].values())[0]))
