"""DLTL — deep learning & transfer learning, a teaching dashboard. The entry script.

Run with ``streamlit run streamlit_app.py``. One concept per page, each a script in
``pages/``; the list of pages (titles, icons, sections, URL paths) is ``dltl_ui.nav``,
and this script only hands it to ``st.navigation`` and runs the page the URL names.
"""

from dltl_ui.nav import navigation

navigation().run()
