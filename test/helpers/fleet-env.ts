export { portEnv } from '../../scripts/servers/ports.js';
