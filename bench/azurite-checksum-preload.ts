/** `node --require` this into Azurite: see `azurite-checksum.ts`. */
import { installInAzurite } from './azurite-checksum';

installInAzurite();
