// TEMPORARY (see node-entry.ts): maps the not-yet-landed src/node/index.js to the stand-in.
import { register } from 'node:module';
register('./hooks.mjs', import.meta.url);
