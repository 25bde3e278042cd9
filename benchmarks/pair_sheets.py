"""Contact sheets of the best and worst pairs of a built dataset (replace mode), for looking at results.

Usage: python benchmarks/pair_sheets.py DATASET OUT_PREFIX   → OUT_PREFIX_best.png, OUT_PREFIX_worst.png

Each row: source frames first / middle / last, then the edited frames. Pairs are ranked by
background SSIM + identity − 2 × motion error (the judge's scores), rejected pairs included.
"""
import sys, json, re, numpy as np, cv2
from pathlib import Path
from pvtt.media import read_video, write_png
ds = Path(sys.argv[1]); outp = sys.argv[2]
page = (ds/'report/index.html').read_text()
data = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1)
rows = [r for r in json.loads(data.replace('<\\/', '</')) if r['files'].get('edited_video') and r['mode']=='replace']
def score(r):
    s = r['scores']
    return s.get('background_ssim', 0) + s.get('identity', 0) - 2 * s.get('motion_error', 0.5)
rows.sort(key=score, reverse=True)
def sheet(sel, name):
    tiles = []
    for r in sel:
        s,_ = read_video(ds/'report'/r['files']['source_video']); e,_ = read_video(ds/'report'/r['files']['edited_video'])
        idx = [0, len(e)//2, len(e)-1]
        th = lambda f: cv2.resize(f, (220, int(220*f.shape[0]/f.shape[1])))
        row = np.concatenate([th(s[i]) for i in idx] + [th(e[i]) for i in idx], 1)
        txt = f"{r['pair_id'][:34]} {r['verdict']} q={score(r):.2f}"
        cv2.putText(row, txt, (4, 16), 0, 0.45, (0,0,0), 3); cv2.putText(row, txt, (4, 16), 0, 0.45, (255,255,0), 1)
        tiles.append(row)
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.resize(t, (t.shape[1]*h//t.shape[0], h)) for t in tiles]
    w = max(t.shape[1] for t in tiles); tiles = [np.pad(t, ((0,0),(0,w-t.shape[1]),(0,0))) for t in tiles]
    write_png(f'{outp}_{name}.png', np.concatenate(tiles, 0))
sheet(rows[:5], 'best'); sheet(rows[-5:], 'worst')
print(len(rows), [(r['pair_id'], round(score(r),2), r['verdict']) for r in rows[:5]], [(r['pair_id'], round(score(r),2), r['verdict']) for r in rows[-5:]])
