#!/usr/bin/env node
// Writes schema/mosn.schema.json (the config file's JSON Schema, for editors)
// from the TypeBox schema in dist/. Run after `tsc`; `npm run build` does both.
// test/config/schema.test.ts fails when the committed file is stale.

import { mkdir, writeFile } from 'node:fs/promises';
import { configJsonSchema } from '../dist/config/schema.js';

const out = new URL('../schema/mosn.schema.json', import.meta.url);
await mkdir(new URL('.', out), { recursive: true });
await writeFile(out, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out.pathname}`);
