import { BlockList, isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { ApiError } from './errors.ts';

/** Addresses a local server may be named by: loopback, private, link-local and unspecified ranges. */
const LOCAL_RANGES = new BlockList();
LOCAL_RANGES.addSubnet('127.0.0.0', 8, 'ipv4');
LOCAL_RANGES.addSubnet('10.0.0.0', 8, 'ipv4');
LOCAL_RANGES.addSubnet('172.16.0.0', 12, 'ipv4');
LOCAL_RANGES.addSubnet('192.168.0.0', 16, 'ipv4');
LOCAL_RANGES.addAddress('0.0.0.0', 'ipv4');
LOCAL_RANGES.addAddress('::1', 'ipv6');
LOCAL_RANGES.addAddress('::', 'ipv6');
LOCAL_RANGES.addSubnet('fc00::', 7, 'ipv6');
LOCAL_RANGES.addSubnet('fe80::', 10, 'ipv6');

const LOCAL_SUFFIXES = ['.localhost', '.local', '.internal'];

/** The host part of a Host header value: `name`, `name:port`, `[v6]` or `[v6]:port`, lowercased. */
export function hostOf(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end < 0 ? value : value.slice(1, end);
  }
  const colon = value.indexOf(':');
  // More than one colon without brackets is a bare IPv6 address, not name:port.
  return colon >= 0 && value.indexOf(':', colon + 1) < 0 ? value.slice(0, colon) : value;
}

function isLoopbackAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) return address.startsWith('127.');
  return version === 6 && (address === '::1' || /^::ffff:127\./.test(address));
}

/** This machine's own interface addresses (Ollama accepts them too). */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase());
  return out;
}

/**
 * Ollama's allowed-host rule for a server on a loopback address: loopback, private and link-local addresses, this
 * machine's own addresses and hostname, `localhost` and names under `.localhost`, `.local` or `.internal`. Any other
 * name can only come from a browser whose DNS was made to point elsewhere (DNS rebinding).
 */
export function isAllowedHost(host: string): boolean {
  if (host === '' || host === 'localhost' || host === hostname().toLowerCase()) return true;
  const version = isIP(host);
  if (version !== 0) return LOCAL_RANGES.check(host, version === 4 ? 'ipv4' : 'ipv6') || ownAddresses().has(host);
  return LOCAL_SUFFIXES.some((suffix) => host.endsWith(suffix));
}

/**
 * The Host check: while the server listens on a loopback address (read at request time, once it is bound), a
 * request whose Host is not a local name gets 403. Bound anywhere else, any Host is accepted (the API key guards
 * that case).
 */
export function hostCheck(boundAddress: () => string | null) {
  let loopback: boolean | null = null;
  // Clients send the same Host on every request: the last one allowed is not parsed and looked up again.
  let lastAllowed: string | undefined;
  return (host: string | undefined): void => {
    if (loopback === null) {
      const address = boundAddress();
      if (address === null) return;
      loopback = isLoopbackAddress(address);
    }
    if (!loopback || (host !== undefined && host === lastAllowed)) return;
    if (isAllowedHost(hostOf(host ?? ''))) {
      lastAllowed = host;
      return;
    }
    throw new ApiError(
      403,
      `host "${(host ?? '').slice(0, 200)}" is not allowed: a server on a loopback address answers only local names`,
      null,
      'host_not_allowed',
    );
  };
}
