import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Ir } from './ir.ts';
import { COMPILER_VERSION } from './version.ts';
import validateManifest from './generated/image-manifest-validator.js';

/*
 * The image: one file holding everything an appliance needs (architecture.md,
 * "Images"). A first line names the format, a second line is the JSON
 * manifest, and the sections follow back to back: the IR, the generated
 * filter code and the bundled runtime. Nothing in it depends on the time or
 * the machine, so the same source and compiler give the same bytes.
 */

export const IMAGE_MAGIC = 'NACL-IMAGE';
export const IMAGE_FORMAT_VERSION = 1;

export type SectionName = 'ir' | 'code' | 'runtime';

export interface ImageSection {
  readonly name: SectionName;
  /** From the first byte after the manifest line. */
  readonly offset: number;
  readonly length: number;
  readonly sha256: string;
}

export interface ImageNicRequirement {
  readonly index: number | null;
  readonly mac: string | null;
  readonly ifaces: readonly string[];
}

export interface ImageManifest {
  readonly format: typeof IMAGE_MAGIC;
  readonly formatVersion: number;
  readonly compilerVersion: string;
  readonly source: { readonly file: string; readonly sha256: string };
  readonly nics: readonly ImageNicRequirement[];
  readonly summary: ImageSummary;
  readonly sections: readonly ImageSection[];
  /** sha256 of all section bytes, in order. */
  readonly contentSha256: string;
}

export interface ImageSummary {
  readonly ifaces: readonly { name: string; nic: string; vlan: number | null; address: string | null; config: string; chains: Record<string, number> }[];
  readonly functions: number;
  readonly rules: number;
  readonly gateway: { readonly routes: number; readonly forward: number } | null;
  readonly loadBalancer: { readonly port: number; readonly algorithm: string; readonly pool: readonly string[] } | null;
  readonly conntrack: boolean;
  readonly nat: boolean;
  readonly syslog: string | null;
  readonly timers: number;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

export function summarize(ir: Ir): ImageSummary {
  return {
    ifaces: ir.ifaces.map((i) => ({
      name: i.name,
      nic: 'index' in i.nic ? String(i.nic.index) : i.nic.mac,
      vlan: i.vlan,
      address: i.address ? `${i.address}/${i.prefixLength}` : null,
      config: i.config,
      chains: Object.fromEntries(Object.entries(i.chains).map(([c, steps]) => [c, steps.length])),
    })),
    functions: ir.functions.filter((f) => f.attached).length,
    rules: Object.keys(ir.rules).length,
    gateway: ir.gateway && { routes: ir.gateway.routes.length, forward: ir.gateway.forward.length },
    loadBalancer: ir.loadBalancer && {
      port: ir.loadBalancer.clients.port,
      algorithm: ir.loadBalancer.servers.algorithm,
      pool: ir.loadBalancer.servers.pool.map((n) => `${n.address}:${n.port}`),
    },
    conntrack: ir.conntrack.enabled,
    nat: ir.nat.enabled,
    syslog: ir.syslog && `${ir.syslog.address}:${ir.syslog.port}`,
    timers: ir.timers.length,
  };
}

function nicRequirements(ir: Ir): ImageNicRequirement[] {
  return ir.nics.map((n) => ({
    index: n.index,
    mac: n.mac,
    ifaces: ir.ifaces.filter((i) => ('index' in i.nic ? i.nic.index === n.index : i.nic.mac === n.mac)).map((i) => i.name),
  }));
}

export function writeImage(ir: Ir, code: string, runtime: string): Uint8Array {
  // Source spans keep only the file's base name, so the image does not depend on where it was built.
  const portableIr = JSON.stringify(ir, (key, value) => (key === 'file' && typeof value === 'string' ? basename(value) : value));
  const encoder = new TextEncoder();
  const parts: [SectionName, Uint8Array][] = [
    ['ir', encoder.encode(portableIr)],
    ['code', encoder.encode(code)],
    ['runtime', encoder.encode(runtime)],
  ];
  let offset = 0;
  const sections: ImageSection[] = parts.map(([name, bytes]) => {
    const s = { name, offset, length: bytes.length, sha256: sha256(bytes) };
    offset += bytes.length;
    return s;
  });
  const body = new Uint8Array(offset);
  parts.forEach(([, bytes], i) => body.set(bytes, sections[i]!.offset));
  const manifest: ImageManifest = {
    format: IMAGE_MAGIC,
    formatVersion: IMAGE_FORMAT_VERSION,
    compilerVersion: COMPILER_VERSION,
    source: { file: basename(ir.source.file), sha256: ir.source.sha256 },
    nics: nicRequirements(ir),
    summary: summarize(ir),
    sections,
    contentSha256: sha256(body),
  };
  const head = encoder.encode(`${IMAGE_MAGIC} ${IMAGE_FORMAT_VERSION}\n${JSON.stringify(manifest)}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

export interface LoadedImage {
  readonly manifest: ImageManifest;
  readonly ir: Ir;
  readonly code: string;
  readonly runtime: string;
  readonly sha256: string;
  readonly size: number;
}

export type ImageResult = { ok: true; image: LoadedImage } | { ok: false; message: string };

/** Reads and checks an image; every problem is a readable message, never an exception. */
export function readImage(bytes: Uint8Array): ImageResult {
  const fail = (message: string): ImageResult => ({ ok: false, message });
  const firstNewline = bytes.indexOf(10);
  if (firstNewline < 0 || firstNewline > 64) return fail('not a NaCl image (no image header)');
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const header = decoder.decode(bytes.subarray(0, firstNewline));
  const [magic, version] = header.split(' ');
  if (magic !== IMAGE_MAGIC) return fail('not a NaCl image (the header does not start with NACL-IMAGE)');
  if (Number(version) !== IMAGE_FORMAT_VERSION) {
    return fail(`image format version ${version} is not supported by this nacl (it reads version ${IMAGE_FORMAT_VERSION}); rebuild the image with this nacl`);
  }
  const secondNewline = bytes.indexOf(10, firstNewline + 1);
  if (secondNewline < 0) return fail('truncated image: the manifest is incomplete');
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(decoder.decode(bytes.subarray(firstNewline + 1, secondNewline))) as ImageManifest;
  } catch {
    return fail('corrupt image: the manifest is not valid JSON');
  }
  if (!validateManifest(manifest)) {
    const e = validateManifest.errors?.[0];
    return fail(`corrupt image: the manifest ${e ? `${e.instancePath || '(top level)'} ${e.message ?? 'is invalid'}` : 'is invalid'}`);
  }
  const body = bytes.subarray(secondNewline + 1);
  const found: Partial<Record<SectionName, string>> = {};
  for (const s of manifest.sections) {
    if (!Number.isInteger(s.offset) || !Number.isInteger(s.length) || s.offset < 0 || s.offset + s.length > body.length) {
      return fail(`truncated image: section ${s.name} extends past the end of the file`);
    }
    const data = body.subarray(s.offset, s.offset + s.length);
    if (sha256(data) !== s.sha256) return fail(`corrupt image: section ${s.name} does not match its checksum`);
    found[s.name as SectionName] = decoder.decode(data);
  }
  if (sha256(body) !== manifest.contentSha256) return fail('corrupt image: the content hash does not match');
  if (found.ir === undefined || found.code === undefined || found.runtime === undefined) return fail('corrupt image: a section is missing');
  let ir: Ir;
  try {
    ir = JSON.parse(found.ir) as Ir;
  } catch {
    return fail('corrupt image: the IR section is not valid JSON');
  }
  return { ok: true, image: { manifest, ir, code: found.code, runtime: found.runtime, sha256: sha256(bytes), size: bytes.length } };
}
