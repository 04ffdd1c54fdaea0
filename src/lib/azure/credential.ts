/**
 * The one Azure credential of the process. A user-assigned managed identity when its client id is
 * configured (no probing of other sources, so a misconfiguration fails loudly), otherwise the default
 * chain, which finds the system-assigned identity in Azure and a developer login locally.
 */
import type * as Identity from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type { Config } from '../config/config';

let cached: { key: string; credential: TokenCredential } | undefined;

function keyOf(config: Config): string {
  return `${config.managedIdentityClientId ?? ''}|${config.authorityHost ?? ''}`;
}

/**
 * Cached per process: the credential caches its tokens, and a new object per call would ask the
 * identity endpoint again. A changed identity or authority (tests, the local host) makes a new one.
 */
export function createAzureCredential(config: Config): TokenCredential {
  const key = keyOf(config);
  if (cached?.key === key) return cached.credential;
  // Loaded on first use: a process on connection strings (local, tests) never needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DefaultAzureCredential, ManagedIdentityCredential } = require('@azure/identity') as typeof Identity;
  const authorityHost = config.authorityHost;
  const clientId = config.managedIdentityClientId;
  const credential =
    clientId !== undefined
      ? new ManagedIdentityCredential({ clientId, ...(authorityHost ? { authorityHost } : {}) })
      : new DefaultAzureCredential({
          ...(authorityHost ? { authorityHost } : {}),
        });
  cached = { key, credential };
  return credential;
}
