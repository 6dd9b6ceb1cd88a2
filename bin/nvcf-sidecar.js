#!/usr/bin/env node
// The `nvcf-sidecar` command (also `npx nvcf-sidecar` and `npm start --`). In a clone, where
// src/ is present, it runs the TypeScript through tsx in this same process: no build step, and
// the code that runs is the code you read. A published package ships dist/ only and runs that.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
const built = new URL('../dist/main.js', import.meta.url);

if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    register = undefined;
  }
  if (register) {
    register();
    await import(source.href);
  } else if (existsSync(built)) {
    await import(built.href);
  } else {
    process.stderr.write('nvcf-sidecar: run `npm install` first (it brings tsx, which runs src/ without a build)\n');
    process.exitCode = 2;
  }
} else {
  await import(built.href);
}
