import Foundation

/// The heat map page: one self-contained HTML file (no CDN, fonts or scripts from elsewhere) that
/// draws 16384 slots as a 128 × 128 grid. Each owner gets a hue, so owners show as regions; the
/// chosen measure sets how dark a cell is (log scale). Hovering a cell shows its figures, a click
/// pins it; until then the detail shows the hottest slot. Served live by every sidecar at
/// `/v1/heatmap` (it reads `heatmap/data` and refreshes), and written with its data embedded by
/// `slotwarden fleet heatmap`.
///
/// The page marks what a test checks: `#grid` holds one `.cell` per slot; `#detail` carries the shown
/// slot's figures as `data-*` attributes; `body[data-refreshes]` counts the data loads.
public enum HeatmapPage {
    /// The page of a live sidecar: loads `dataURL` (relative to the page) every `refreshMilliseconds`.
    public static func live(dataURL: String, refreshMilliseconds: Int) -> String {
        page(data: "null", dataURL: dataURL, refreshMilliseconds: refreshMilliseconds)
    }

    /// A page with `data` embedded: it works offline and never refreshes.
    public static func embedding(_ data: HeatmapData) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        // "</" cannot end the script element when escaped.
        let json = String(decoding: try encoder.encode(data), as: UTF8.self).replacingOccurrences(of: "</", with: "<\\/")
        return page(data: json, dataURL: "", refreshMilliseconds: 0)
    }

    private static func page(data: String, dataURL: String, refreshMilliseconds: Int) -> String {
        template
            .replacingOccurrences(of: "__DATA_URL__", with: dataURL)
            .replacingOccurrences(of: "__REFRESH_MS__", with: "\(refreshMilliseconds)")
            .replacingOccurrences(of: "__EMBEDDED_DATA__", with: data)
    }

    private static let template = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>slotwarden · slot heat map</title>
        <style>
          body { font: 14px/1.4 system-ui, sans-serif; margin: 20px; color: #1d2430; background: #f7f8fa; }
          h1 { font-size: 18px; margin: 0 0 4px; }
          #source { color: #5b6575; margin: 0 0 12px; }
          #layout { display: flex; gap: 24px; align-items: flex-start; }
          #grid { display: grid; grid-template-columns: repeat(128, 5px); grid-auto-rows: 5px; border: 1px solid #9aa3b2; background: #fff; }
          .cell { width: 5px; height: 5px; }
          .cell.pinned { outline: 2px solid #000; position: relative; z-index: 1; }
          #side { min-width: 320px; }
          #detail, #legend, #totals { background: #fff; border: 1px solid #d5dae3; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
          #detail h2, #legend h2, #totals h2 { font-size: 14px; margin: 0 0 6px; }
          table { border-collapse: collapse; width: 100%; }
          td { padding: 1px 4px; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
          .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 6px; }
          #scale { height: 10px; border-radius: 2px; margin: 6px 0 2px; }
          .muted { color: #5b6575; }
        </style>
        </head>
        <body data-refreshes="0">
        <h1 id="title">slot heat map</h1>
        <p id="source">loading…</p>
        <label>Measure <select id="measure">
          <option value="bytes_in">bytes in</option><option value="bytes_out">bytes out</option>
          <option value="commands">commands</option><option value="keys">keys</option><option value="cpu_usec">cpu µs</option>
        </select></label>
        <p class="muted">16384 slots, 128 per row (slot = row × 128 + column). Hover a cell for its figures, click to pin it.</p>
        <div id="layout">
          <div id="grid" role="img" aria-label="heat map of 16384 slots"></div>
          <div id="side">
            <div id="detail"><h2>Slot</h2><div id="detail-body">—</div></div>
            <div id="legend"><h2>Legend</h2><div id="legend-body"></div></div>
            <div id="totals"><h2>Totals</h2><div id="totals-body"></div></div>
          </div>
        </div>
        <script>
        "use strict";
        const EMBEDDED = __EMBEDDED_DATA__;
        const DATA_URL = "__DATA_URL__";
        const REFRESH_MS = __REFRESH_MS__;
        const SLOTS = 16384;
        const LABELS = { bytes_in: "bytes in", bytes_out: "bytes out", commands: "commands", keys: "keys", cpu_usec: "cpu µs" };
        let data = null, pinned = null, hovered = null;
        const grid = document.getElementById("grid");
        const select = document.getElementById("measure");
        const params = new URLSearchParams(location.search);
        if (params.get("by") && LABELS[params.get("by")]) select.value = params.get("by");
        const cells = [];
        for (let slot = 0; slot < SLOTS; slot++) {
          const cell = document.createElement("div");
          cell.className = "cell";
          cell.dataset.slot = slot;
          cells.push(cell);
        }
        grid.append(...cells);
        grid.addEventListener("mouseover", e => { if (e.target.dataset.slot) { hovered = +e.target.dataset.slot; showDetail(); } });
        grid.addEventListener("mouseleave", () => { hovered = null; showDetail(); });
        grid.addEventListener("click", e => {
          if (!e.target.dataset.slot) return;
          if (pinned !== null) cells[pinned].classList.remove("pinned");
          pinned = +e.target.dataset.slot === pinned ? null : +e.target.dataset.slot;
          if (pinned !== null) cells[pinned].classList.add("pinned");
          showDetail();
        });
        select.addEventListener("change", render);

        const measure = () => data[select.value] || null;
        const hue = index => (index * 137.508 + 210) % 360;
        const fmt = n => n === undefined || n === null ? "—" : Number(n).toLocaleString("en-US");

        function hottest() {
          const values = measure();
          if (!values) return null;
          let best = -1, bestValue = 0;
          for (let slot = 0; slot < SLOTS; slot++) if (values[slot] > bestValue) { best = slot; bestValue = values[slot]; }
          return best < 0 ? null : best;
        }

        function render() {
          if (!data) return;
          const values = measure();
          let max = 0;
          if (values) for (const v of values) if (v > max) max = v;
          const logMax = Math.log1p(max);
          for (let slot = 0; slot < SLOTS; slot++) {
            const owner = data.owner[slot];
            const heat = values && max > 0 ? Math.log1p(values[slot]) / logMax : 0;
            cells[slot].style.background = owner < 0
              ? `hsl(0, 0%, ${92 - heat * 50}%)`
              : `hsl(${hue(owner)}, ${35 + heat * 50}%, ${93 - heat * 58}%)`;
          }
          renderLegend(max);
          renderTotals();
          showDetail();
        }

        function renderLegend(max) {
          const rows = data.owners.map((owner, index) => {
            let slots = 0;
            for (const o of data.owner) if (o === index) slots++;
            return `<tr><td><span class="swatch" style="background:hsl(${hue(index)},70%,45%)"></span>${owner.address}</td>` +
              `<td class="muted">${owner.id.slice(0, 8)}</td><td class="n">${fmt(slots)} slots</td></tr>`;
          });
          const unowned = data.owner.filter(o => o < 0).length;
          if (unowned) rows.push(`<tr><td><span class="swatch" style="background:#bbb"></span>no owner</td><td></td><td class="n">${fmt(unowned)} slots</td></tr>`);
          document.getElementById("legend-body").innerHTML =
            `<table>${rows.join("")}</table>` +
            `<div id="scale" style="background:linear-gradient(to right,hsl(210,35%,93%),hsl(210,85%,35%))"></div>` +
            `<div class="muted">${LABELS[select.value]}: 0 (light) … ${fmt(max)} (dark), log scale</div>`;
        }

        function renderTotals() {
          const sums = {};
          for (const key of Object.keys(LABELS)) sums[key] = data[key] ? data[key].reduce((a, b) => a + b, 0) : null;
          const perOwner = data.owners.map(() => 0);
          const values = measure();
          if (values) for (let slot = 0; slot < SLOTS; slot++) if (data.owner[slot] >= 0) perOwner[data.owner[slot]] += values[slot];
          const total = perOwner.reduce((a, b) => a + b, 0);
          document.getElementById("totals-body").innerHTML =
            `<table>${Object.keys(LABELS).map(k => `<tr><td>${LABELS[k]}</td><td class="n" id="total-${k}">${fmt(sums[k])}</td></tr>`).join("")}</table>` +
            `<h2 style="margin-top:8px">${LABELS[select.value]} per owner</h2><table>` +
            data.owners.map((o, i) => `<tr><td>${o.address}</td><td class="n">${fmt(perOwner[i])}</td>` +
              `<td class="n">${total ? (100 * perOwner[i] / total).toFixed(1) : "0.0"}%</td></tr>`).join("") + `</table>`;
        }

        function showDetail() {
          if (!data) return;
          const slot = hovered ?? pinned ?? hottest();
          const detail = document.getElementById("detail");
          const body = document.getElementById("detail-body");
          if (slot === null) { body.textContent = "no traffic yet"; delete detail.dataset.slot; return; }
          const owner = data.owner[slot] >= 0 ? data.owners[data.owner[slot]] : null;
          const figures = { commands: data.commands[slot], bytes_in: data.bytes_in[slot], bytes_out: data.bytes_out[slot],
            keys: data.keys ? data.keys[slot] : null, cpu_usec: data.cpu_usec ? data.cpu_usec[slot] : null };
          detail.dataset.slot = slot;
          for (const [key, value] of Object.entries(figures)) detail.dataset[key.replace(/_(.)/g, (m, c) => c.toUpperCase())] = value ?? "";
          const why = hovered !== null ? "under the pointer" : pinned !== null ? "pinned" : `hottest by ${LABELS[select.value]}`;
          body.innerHTML = `<table><tr><td>slot</td><td class="n">${slot}</td></tr>` +
            `<tr><td>owner</td><td class="n">${owner ? owner.address : "none"}</td></tr>` +
            Object.entries(figures).map(([k, v]) => `<tr><td>${LABELS[k]}</td><td class="n">${fmt(v)}</td></tr>`).join("") +
            `</table><div class="muted">${why}</div>`;
        }

        function show(loaded) {
          data = loaded;
          document.getElementById("title").textContent = data.title;
          document.getElementById("source").textContent = `${data.source} · read ${data.generated_at}`;
          document.body.dataset.refreshes = +document.body.dataset.refreshes + 1;
          render();
        }

        async function load() {
          try {
            const response = await fetch(DATA_URL, { cache: "no-store" });
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
            show(await response.json());
          } catch (error) {
            document.getElementById("source").textContent = `cannot load ${DATA_URL}: ${error.message}`;
          }
          if (REFRESH_MS > 0) setTimeout(load, REFRESH_MS);
        }

        if (EMBEDDED) show(EMBEDDED); else load();
        </script>
        </body>
        </html>
        """#
}
