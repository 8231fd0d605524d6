export { DetourHeaders, HeaderLimits } from './header-names.js'
export type { DetourHeaderName, RedirectReason, DeadLetterReason } from './header-names.js'
export { headerString, headerBuffer, truncateUtf8, userHeaders } from './header-values.js'
