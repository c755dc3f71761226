// SPDX-License-Identifier: MIT
//
// Drives Debian's headless Chromium over the DevTools protocol (playwright-core as the CDP client,
// no browser download) the way a user meets a self-signed certificate:
//   load URL (certificate interstitial), click "Advanced" and "Proceed to ... (unsafe)",
//   then load URL again LOADS-1 times in the same browser session.
// With --mode cdpignore the bypass comes from Security.setIgnoreCertificateErrors instead of a click.
//
// With --mode trusted (and --spki HASH: the certificate's key, trusted by
// --ignore-certificate-errors-spki-list) there is no interstitial: the loads simply happen.
//
//   node flow.js --url URL [--mode proceed|cdpignore|trusted] [--spki HASH] [--loads N]
//                [--chromium PATH] [--timeout SEC]
//
// Prints one JSON object per line: {"t_us": epoch microseconds, "event": ..., ...}; the test splits
// the server's attempts into phases by these times. Chromium runs in its own process group, which is
// killed on every exit path; with FLOW_PGID_FILE set, its PGID is appended to that file too.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function parseArgs(argv) {
        const a = { mode: 'proceed', loads: 2, chromium: '/usr/bin/chromium', timeout: 60, url: null, spki: null };
        for (let i = 0; i < argv.length; i += 2) {
                const k = argv[i].replace(/^--/, '');
                if (!(k in a) || argv[i + 1] === undefined)
                        throw new Error(`bad argument ${argv[i]}`);
                a[k] = ['loads', 'timeout'].includes(k) ? parseInt(argv[i + 1], 10) : argv[i + 1];
        }
        if (!a.url || !['proceed', 'cdpignore', 'trusted'].includes(a.mode) || !(a.loads >= 1))
                throw new Error('usage: flow.js --url URL [--mode proceed|cdpignore|trusted] [--spki HASH] [--loads N]');
        return a;
}

const emit = (event, extra) =>
        console.log(JSON.stringify(Object.assign({ t_us: Date.now() * 1000, event }, extra || {})));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
        const args = parseArgs(process.argv.slice(2));
        const { chromium } = require('playwright-core');
        const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tlswatch-flow-'));
        const proc = spawn(args.chromium, [
                '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
                `--user-data-dir=${profile}`,
                ...(args.spki ? [`--ignore-certificate-errors-spki-list=${args.spki}`] : []),
                'about:blank',
        ], { detached: true, stdio: ['ignore', 'ignore', 'ignore'] });
        // Whoever runs us may have to clean up after a SIGKILL: tell them Chromium's process group.
        if (process.env.FLOW_PGID_FILE)
                fs.appendFileSync(process.env.FLOW_PGID_FILE, `${proc.pid}\n`);
        let browser = null;
        let exited = null;
        proc.on('exit', (code, signal) => { exited = signal || `status ${code}`; });
        const killAll = () => {
                try {
                        process.kill(-proc.pid, 'SIGKILL');
                } catch (e) { /* already gone */ }
                // A killed Chromium child may still be writing into the profile for a moment:
                // rmdir then fails with ENOTEMPTY, so retry, and never let the cleanup fail the run.
                try {
                        fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
                } catch (e) {
                        process.stderr.write(`flow.js: could not remove ${profile}: ${e.message}\n`);
                }
        };
        const watchdog = setTimeout(() => {
                emit('timeout');
                killAll();
                process.exit(2);
        }, args.timeout * 1000);
        process.on('SIGTERM', () => { killAll(); process.exit(3); });
        process.on('SIGINT', () => { killAll(); process.exit(3); });
        try {
                // Chromium writes the port it chose to DevToolsActivePort in the profile, as "PORT\n/devtools/
                // browser/GUID". It creates the file first and writes it afterwards (not atomically): a
                // read can find it empty, so wait for a complete first line, as long as the run may take.
                const portFile = path.join(profile, 'DevToolsActivePort');
                let port = null;
                while (port === null) {
                        let m = null;
                        try {
                                m = /^(\d+)\n/.exec(fs.readFileSync(portFile, 'utf8'));
                        } catch (e) { /* not there yet */ }
                        if (m)
                                port = m[1];
                        else if (exited !== null)
                                throw new Error(`Chromium exited (${exited}) before it wrote its DevTools port`);
                        else
                                await sleep(50);
                }
                browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
                const ctx = browser.contexts()[0];
                const page = ctx.pages()[0] || (await ctx.newPage());
                emit('browser', { version: browser.version() });

                const load = async (n) => {
                        emit('goto', { load: n });
                        try {
                                const r = await page.goto(args.url, { waitUntil: 'load', timeout: 15000 });
                                emit('loaded', { load: n, status: r ? r.status() : null, title: await page.title() });
                        } catch (e) {
                                emit('load_failed', { load: n, error: e.message.split('\n')[0] });
                        }
                };

                await load(1);
                await sleep(1500);
                if (args.mode === 'trusted') {
                        // nothing to click
                } else if (args.mode === 'proceed') {
                        const title = await page.title();
                        emit('interstitial', { title });
                        const nav = page.waitForNavigation({ waitUntil: 'load', timeout: 15000 }).catch((e) => e);
                        emit('proceed');
                        const clicked = await page.evaluate(() => {
                                const d = document.getElementById('details-button');
                                const p = document.getElementById('proceed-link');
                                if (!d || !p)
                                        return false;
                                d.click();
                                p.click();
                                return true;
                        });
                        if (!clicked)
                                throw new Error(`no Proceed link on the page titled ${JSON.stringify(title)}`);
                        const r = await nav;
                        if (r instanceof Error)
                                throw new Error(`navigation after Proceed failed: ${r.message.split('\n')[0]}`);
                        emit('loaded', { load: 1, status: r ? r.status() : null, title: await page.title(),
                                         after: 'proceed' });
                } else {
                        const cdp = await browser.newBrowserCDPSession();
                        emit('proceed');
                        await cdp.send('Security.setIgnoreCertificateErrors', { ignore: true });
                }
                await sleep(1500);
                for (let n = 2; n <= args.loads; n++) {
                        await load(n);
                        await sleep(1500);
                }
                emit('closing');
                try {
                        const cdp = await browser.newBrowserCDPSession();
                        await cdp.send('Browser.close');
                } catch (e) { /* the connection drops as the browser exits */ }
                for (let i = 0; i < 100 && proc.exitCode === null && proc.signalCode === null; i++)
                        await sleep(50);
                emit('closed');
        } finally {
                clearTimeout(watchdog);
                killAll();
        }
}

main().then(() => process.exit(0), (e) => {
        emit('error', { error: String(e && e.message || e) });
        process.exit(1);
});
