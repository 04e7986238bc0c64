import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { ApiError } from './lib/api/client';
import { i18n } from './lib/i18n/index.svelte';

document.documentElement.lang = i18n.locale;
mount(App, { target: document.getElementById('app') as HTMLElement });

// A call cut short by an expired session has already sent the person to the login page: nothing more to report.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason instanceof ApiError && event.reason.status === 401) event.preventDefault();
});
