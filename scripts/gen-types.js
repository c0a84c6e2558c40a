#!/usr/bin/env node
// Generates TypeScript types for cri-api/api.proto into cri-api/generated (run by `npm run build` and `make proto`).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'cri-api', 'generated');
fs.rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [
  require.resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js'),
  '--keepCase', '--longs=String', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js',
  '-O', out, path.join(root, 'cri-api', 'api.proto'),
], { stdio: 'inherit' });
