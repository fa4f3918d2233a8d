export * from './netns.js';
export * from './sysctl.js';
export * from './exec.js';
