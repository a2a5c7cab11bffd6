// Worker entry: workers do not inherit the CLI's TypeScript loader, so register it before loading the worker.
import { register } from 'tsx/esm/api';

register();
await import('./pooling-worker.ts');
