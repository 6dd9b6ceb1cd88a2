/**
 * What `invoke` tells the person waiting, on stderr (stdout carries only the result, so it can be
 * piped). On a terminal: one status line redrawn in place with `\r` (a progress bar or "waiting",
 * the elapsed time, or the download's bytes), with the request id and each partial response
 * printed above it. Anywhere else: plain lines, one per change, nothing redrawn.
 */
export class StatusLine {
  private readonly startedAt = Date.now();
  private percent: number | undefined;
  private download: { received: number; total: number | undefined } | undefined;
  private lastPlainDownloadStep = -1;
  private drawn = false;
  private lastDrawAt = 0;
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    readonly tty = Boolean(out.isTTY),
  ) {}

  /** On a terminal, keeps the elapsed time moving while nothing else changes. */
  start(): void {
    if (!this.tty) return;
    this.redraw();
    this.ticker = setInterval(() => this.redraw(), 1000);
    this.ticker.unref();
  }

  /** A line above the status line (the request id, a partial response). */
  say(line: string): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[K');
    this.out.write(`${line}\n`);
    this.drawn = false;
    if (this.tty && this.ticker) this.redraw();
  }

  progress(percent: number): void {
    const clamped = Math.max(0, Math.min(100, Math.round(percent)));
    if (clamped === this.percent) return;
    this.percent = clamped;
    if (this.tty) this.redraw();
    else this.out.write(`${bar(clamped)}  ${elapsed(this.startedAt)}\n`);
  }

  downloading(received: number, total: number | undefined): void {
    this.download = { received, total };
    if (this.tty) {
      // A chunk arrives every few kilobytes; a terminal needs a few frames a second.
      if (Date.now() - this.lastDrawAt >= 100 || received === total) this.redraw();
      return;
    }
    // Plain output: a line per tenth of a known size, else one per 64 MiB.
    const step = total ? Math.floor((received / total) * 10) : Math.floor(received / (64 * 1024 * 1024));
    if (step === this.lastPlainDownloadStep && received !== total) return;
    this.lastPlainDownloadStep = step;
    this.out.write(`${downloadText(received, total)}  ${elapsed(this.startedAt)}\n`);
  }

  /**
   * Ends the status line before the result is written (a later download starts a new one). A
   * finished request that showed a bar shows it full, so a bar never stops at the last
   * percentage the function happened to report.
   */
  finish(succeeded: boolean): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    if (!this.tty) {
      if (succeeded && this.percent !== undefined && this.percent < 100 && !this.download)
        this.out.write(`${bar(100)}  ${elapsed(this.startedAt)}\n`);
      this.percent = undefined;
      this.download = undefined;
      return;
    }
    if (succeeded && this.percent !== undefined && this.percent < 100 && !this.download) {
      this.percent = 100;
    }
    if (this.percent !== undefined || this.download) {
      this.redraw();
      this.out.write('\n');
    } else if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
    this.percent = undefined;
    this.download = undefined;
  }

  private redraw(): void {
    const time = elapsed(this.startedAt);
    const text = this.download
      ? `${downloadText(this.download.received, this.download.total)}  ${time}`
      : this.percent !== undefined
        ? `${bar(this.percent)}  ${time}`
        : `waiting  ${time}`;
    this.out.write(`\r\x1b[K${text}`);
    this.drawn = true;
    this.lastDrawAt = Date.now();
  }
}

function bar(percent: number): string {
  const filled = Math.round(percent / 5);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${String(percent).padStart(3)}%`;
}

function downloadText(received: number, total: number | undefined): string {
  return total
    ? `downloading the result: ${bytes(received)} of ${bytes(total)} (${Math.floor((received / total) * 100)}%)`
    : `downloading the result: ${bytes(received)}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function elapsed(since: number): string {
  const s = Math.floor((Date.now() - since) / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
