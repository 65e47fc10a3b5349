// The browser tests drive Debian's Chromium. When it is missing and we run as root with apt-get
// (CI, a fresh container), install it; otherwise stop with a sentence saying what to do.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const path = process.env.SRPC_CHROMIUM ?? '/usr/bin/chromium'
if (!existsSync(path)) {
  const root = process.getuid?.() === 0
  const apt = existsSync('/usr/bin/apt-get')
  if (!root || !apt || process.env.SRPC_CHROMIUM) {
    console.error(
      `web-chat browser tests: no Chromium at ${path}. Install it (Debian/Ubuntu: ` +
        '`sudo apt-get update && sudo apt-get install -y chromium`) or set SRPC_CHROMIUM to a Chromium binary.',
    )
    process.exit(1)
  }
  console.log('web-chat browser tests: installing chromium with apt-get (about a minute)…')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env })
  if (!existsSync(path)) {
    console.error(`web-chat browser tests: apt-get installed chromium, but ${path} is still missing`)
    process.exit(1)
  }
}
