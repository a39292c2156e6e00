export function mount(root){ root.textContent = 'coming'; return {}; }
