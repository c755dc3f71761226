// SPDX-License-Identifier: MIT
//
// Loads one page in Debian's headless Chromium (playwright-core as the DevTools client, no browser
// download) and reports, as one JSON object on stdout, what the HTML report tests assert:
//   console:  every console message, log entry (CSP violations are reported there) and exception,
//             from the CDP events Runtime.consoleAPICalled, Runtime.exceptionThrown, Log.entryAdded
//   requests: the URLs of Network.requestWillBeSent other than the page itself (Chromium sends the
//             event also for a request that the CSP then blocks)
//   blocked:  the requests blocked, with Network.loadingFailed's blockedReason ("csp")
//   timelines: per svg.timeline: its id, the family (data-family of its section, the DB's stable JA4),
//             the section's data-attempts, the marks (with their data-outcome), the sum of the bins'
//             data-n, the spans' data-n, and its box on the screenshot (CSS px)
//   dpr: devicePixelRatio; and a full-page screenshot in --screenshot.
//
//   node html-page.js --url URL --screenshot PNG [--width 1100] [--height 900] [--spki HASH]
//                     [--chromium PATH] [--full 1]
'use strict';

function parseArgs(argv) {
        const a = { url: null, screenshot: null, width: 1100, height: 900, spki: null,
                    chromium: '/usr/bin/chromium', full: 1 };
        for (let i = 0; i < argv.length; i += 2) {
                const k = argv[i].replace(/^--/, '');
                if (!(k in a) || argv[i + 1] === undefined)
                        throw new Error(`bad argument ${argv[i]}`);
                a[k] = ['width', 'height', 'full'].includes(k) ? parseInt(argv[i + 1], 10) : argv[i + 1];
        }
        if (!a.url || !a.screenshot)
                throw new Error('usage: html-page.js --url URL --screenshot PNG [--width W] [--height H] [--spki HASH]');
        return a;
}

async function main() {
        const args = parseArgs(process.argv.slice(2));
        const { chromium } = require('playwright-core');
        const browser = await chromium.launch({
                executablePath: args.chromium,
                args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                       ...(args.spki ? [`--ignore-certificate-errors-spki-list=${args.spki}`] : [])],
        });
        const out = { console: [], requests: [], blocked: [], timelines: [], dpr: null };
        const urls = new Map();
        try {
                const page = await browser.newPage({ viewport: { width: args.width, height: args.height } });
                const cdp = await page.context().newCDPSession(page);
                cdp.on('Runtime.consoleAPICalled', (e) =>
                        out.console.push({ kind: 'console', type: e.type,
                                           text: e.args.map((x) => x.value ?? x.description).join(' ') }));
                cdp.on('Runtime.exceptionThrown', (e) =>
                        out.console.push({ kind: 'exception', text: e.exceptionDetails.text }));
                cdp.on('Log.entryAdded', (e) =>
                        out.console.push({ kind: 'log', source: e.entry.source, level: e.entry.level,
                                           text: e.entry.text }));
                cdp.on('Network.requestWillBeSent', (e) => {
                        urls.set(e.requestId, e.request.url);
                        if (e.request.url !== args.url)
                                out.requests.push(e.request.url);
                });
                cdp.on('Network.loadingFailed', (e) => {
                        if (e.blockedReason)
                                out.blocked.push({ url: urls.get(e.requestId), reason: e.blockedReason });
                });
                await cdp.send('Runtime.enable');
                await cdp.send('Log.enable');
                await cdp.send('Network.enable');
                const r = await page.goto(args.url, { waitUntil: 'load', timeout: 30000 });
                out.status = r ? r.status() : null;
                await page.waitForTimeout(300); // late console or log events
                out.dpr = await page.evaluate(() => window.devicePixelRatio);
                out.timelines = await page.evaluate(() =>
                        [...document.querySelectorAll('svg.timeline')].map((svg) => {
                                const sec = svg.closest('section.family');
                                const b = svg.getBoundingClientRect();
                                const sum = (sel) => [...svg.querySelectorAll(sel)]
                                        .reduce((n, e) => n + parseInt(e.dataset.n, 10), 0);
                                return {
                                        id: svg.id,
                                        family: sec ? sec.dataset.family : null,
                                        attempts: sec ? parseInt(sec.dataset.attempts, 10) : null,
                                        marks: [...svg.querySelectorAll('rect.mark')].map((m) => m.dataset.outcome),
                                        bins: sum('g.bin'),
                                        n_bins: svg.querySelectorAll('g.bin').length,
                                        spans: sum('.span'),
                                        box: { x: b.x + window.scrollX, y: b.y + window.scrollY,
                                               width: b.width, height: b.height },
                                };
                        }));
                out.earlier_rows = await page.evaluate(() =>
                        [...document.querySelectorAll('#sequence-attempts tr.fail, #sequence-attempts tr.ok')].length);
                await page.screenshot({ path: args.screenshot, fullPage: !!args.full });
        } finally {
                await browser.close();
        }
        console.log(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => {
        console.error(String(e && e.stack || e));
        process.exit(1);
});
